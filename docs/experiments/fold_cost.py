#!/usr/bin/env python3
"""What a journal fold costs, part by part (docs/performance.md, "The WAL's turn").

Times the statements of `store::journal::fold_oldest` (copied here; keep them in step) on a copy
of a freshly migrated sluice database, after 100,000 rows were folded in, with some log indexes
dropped or some statements skipped. Python's sqlite3 is not the SQLite sluice bundles: read the
ratios, not the times.

    sluice serve --data-dir /tmp/fx --listen 127.0.0.1:0   # stop it once it listens
    python3 docs/experiments/fold_cost.py /tmp/fx/sluice.db
"""
import os, shutil, sqlite3, sys, time
SRC = sys.argv[1]
DST = SRC + '.fold-experiment'
COLS="created_at, type, request_id, user_id, username, key_id, key_name, channel_id, user_group, model, upstream_model, prompt_tokens, completion_tokens, quota, latency_ms, ttfb_ms, is_stream, status, usage_source, content, key_charge, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens"
JCOLS=COLS.replace(", cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens","")
def roll(table):
    return f"""INSERT INTO {table}, type, user_id, key_id, model, channel_id, user_group, status,
            requests, prompt_tokens, completion_tokens, quota, latency_ms)
         SELECT created_at - ((created_at % ?1) + ?1) % ?1, type, IFNULL(user_id, 0),
            IFNULL(key_id, 0), IFNULL(model, ''), IFNULL(channel_id, 0), IFNULL(user_group, ''),
            IFNULL(status, 0), COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(quota),
            SUM(IFNULL(latency_ms, 0))
         FROM log_journal WHERE type IN (?2, ?3) AND id <= ?4
         GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
         ON CONFLICT DO UPDATE SET requests = requests + excluded.requests,
            prompt_tokens = prompt_tokens + excluded.prompt_tokens,
            completion_tokens = completion_tokens + excluded.completion_tokens,
            quota = quota + excluded.quota,
            latency_ms = latency_ms + excluded.latency_ms"""
def run(drop, rows=256, rounds=60, label="", skip=()):
    for f in (DST,DST + '-wal',DST + '-shm'):
        if os.path.exists(f): os.remove(f)
    shutil.copy(SRC,DST)
    c=sqlite3.connect(DST, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL"); c.execute("PRAGMA synchronous=NORMAL"); c.execute("PRAGMA temp_store=MEMORY")
    for d in drop: c.execute(f"DROP INDEX {d}")
    c.execute("UPDATE users SET quota = 1000000000000 WHERE id = 1")
    c.execute("INSERT OR IGNORE INTO api_keys (id, user_id, name, digest, prefix, unlimited, created_at) VALUES (1, 1, 'a', x'01', 'sk-a', 1, 0)")
    t0=1_760_000_000
    n=0
    def fill(k):
        nonlocal n
        data=[]
        for i in range(k):
            n+=1
            data.append((t0+n//3000, 2, f"01JREQ{n:020d}", 1, 'root', 1, 'k', 1, 'default', 'gpt-4o-mini', 'gpt-4o-mini', 8, 16, 24, 1, 1, 0, 200, 'upstream', None, 0, 1, 1))
        c.executemany(f"INSERT INTO log_journal ({JCOLS}, charge_user, charge_key) VALUES ({','.join('?'*23)})", data)
    def fold():
        last=c.execute("SELECT MAX(id) FROM log_journal").fetchone()[0]
        if 'bal' not in skip: c.execute("UPDATE users SET quota = quota - j.q, used_quota = used_quota + j.q, request_count = request_count + j.n FROM (SELECT charge_user AS uid, SUM(quota) AS q, COUNT(*) AS n FROM log_journal WHERE charge_user IS NOT NULL AND id <= ?1 GROUP BY charge_user) AS j WHERE users.id = j.uid",(last,))
        if 'bal' not in skip: c.execute("UPDATE api_keys SET remain_quota = remain_quota - j.kc, used_quota = used_quota + j.q, last_used_at = j.at FROM (SELECT charge_key AS kid, SUM(key_charge) AS kc, SUM(quota) AS q, MAX(created_at) AS at FROM log_journal WHERE charge_key IS NOT NULL AND id <= ?1 GROUP BY charge_key) AS j WHERE api_keys.id = j.kid",(last,))
        if 'insert' not in skip: c.execute(f"INSERT INTO logs ({JCOLS}) SELECT {JCOLS} FROM log_journal WHERE id <= ?1 ORDER BY id",(last,))
        for table,period in (("usage_hourly (hour",3600),("usage_daily (day",86400)):
            if 'roll' not in skip: c.execute(roll(table),(period,2,5,last))
        c.execute("DELETE FROM log_journal WHERE id <= ?1",(last,))
    # warm: 100k rows in logs
    c.execute("BEGIN")
    for _ in range(50):
        fill(2000); fold()
    c.execute("COMMIT")
    times=[]
    for r in range(rounds):
        c.execute("BEGIN"); fill(rows); c.execute("COMMIT")
        s=time.perf_counter(); c.execute("BEGIN IMMEDIATE"); fold(); c.execute("COMMIT"); times.append(time.perf_counter()-s)
    times.sort()
    print(f"{label:40s} rows={rows:4d} median {times[len(times)//2]*1000:.3f} ms  p90 {times[int(len(times)*0.9)]*1000:.3f}")
LOG_INDEXES = ['logs_status_created', 'logs_group_created', 'logs_type_created',
               'logs_channel_created', 'logs_model_created', 'logs_key_created',
               'logs_user_created', 'logs_request', 'logs_created_sorts']
for rows in (256, 64):
    run([], rows, label="the whole fold")
    run(LOG_INDEXES[:4], rows, label="without 4 log indexes")
    run(LOG_INDEXES, rows, label="without any log index")
run([], 256, label="without the rollups", skip=('roll',))
run([], 256, label="without the balances", skip=('bal',))
run([], 256, label="without the insert into logs", skip=('insert',))
run([], 256, label="the delete alone", skip=('insert', 'roll', 'bal'))
for f in (DST, DST + '-wal', DST + '-shm'):
    if os.path.exists(f):
        os.remove(f)
