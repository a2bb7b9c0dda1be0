//! The writer's jobs: what a caller queues, how it runs inside a batch, and how it is answered.

use super::*;

/// How a job's own statements went.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Ran {
    Ok,
    /// The job's error: its savepoint is rolled back, the rest of the batch commits.
    Failed,
    /// SQLite could not write the file (disk full, I/O error): as good as a failed commit.
    StorageFailed,
}

/// A unit of work: `run` inside the transaction, then `finish` with the commit's outcome.
pub(super) trait WriteJob: Send {
    /// A journal append: runs without folding the journal first.
    fn appends(&self) -> bool;
    fn run(&mut self, conn: &Connection) -> Ran;
    /// The job cannot run (the fold before it failed): `finish` answers with `e`.
    fn refuse(&mut self, e: StoreError);
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

pub(super) type Job = Box<dyn WriteJob>;

/// Where a job's answer goes: an async caller, or a thread that may be an async worker
/// ([`Writer::fold_blocking`]), which must not use tokio's blocking receive.
pub(super) enum Reply<T> {
    Async(oneshot::Sender<Result<T, StoreError>>),
    Sync(std::sync::mpsc::SyncSender<Result<T, StoreError>>),
}

pub(super) struct TypedJob<T, F> {
    pub(super) f: Option<F>,
    pub(super) appends: bool,
    pub(super) result: Option<Result<T, StoreError>>,
    pub(super) done: Reply<T>,
}

impl<T, F> WriteJob for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn appends(&self) -> bool {
        self.appends
    }

    fn refuse(&mut self, e: StoreError) {
        self.f = None;
        self.result = Some(Err(e));
    }

    fn run(&mut self, conn: &Connection) -> Ran {
        let Some(f) = self.f.take() else {
            return Ran::Failed;
        };
        let r = f(conn);
        let ran = match &r {
            Ok(_) => Ran::Ok,
            Err(e) if e.is_storage_failure() => Ran::StorageFailed,
            Err(_) => Ran::Failed,
        };
        self.result = Some(r);
        ran
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let out = match (commit, self.result) {
            (Ok(()), Some(r)) => r,
            (Ok(()), None) => Err(StoreError::Commit("the write was not run".into())),
            // The job's own error says more than the failed commit it caused.
            (Err(_), Some(Err(e))) => Err(e),
            (Err(e), _) => Err(StoreError::Commit(e)),
        };
        match self.done {
            Reply::Async(tx) => {
                let _ = tx.send(out);
            }
            Reply::Sync(tx) => {
                let _ = tx.send(out);
            }
        }
    }
}

pub(super) fn typed_job<T, F>(
    f: F,
    appends: bool,
) -> (Job, oneshot::Receiver<Result<T, StoreError>>)
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    let (done, rx) = oneshot::channel();
    let job = TypedJob {
        f: Some(f),
        appends,
        result: None,
        done: Reply::Async(done),
    };
    (Box::new(job), rx)
}

pub(super) enum Msg {
    Job(Job),
    /// From the fold timer: rows have waited in the journal a [`super::fold::FOLD_EVERY`];
    /// fold them after the batch at hand, in a transaction of their own (as a job, the fold ran
    /// inside the batch and the calls in it waited for it).
    FoldDue,
    /// Finish queued jobs, checkpoint, close the connection, then answer.
    Stop(oneshot::Sender<Result<(), StoreError>>),
}
