//! nginx as the floor: a bare reverse proxy in front of the same mock, on the core sluice gets,
//! that sluice's throughput and CPU per call are compared with. What a proxy costs at the least;
//! sluice does more per call (a key, a charge, a log row), so the ratio says what that costs.
//!
//! One process (`master_process off`, so the process measured is the one that works), keep-alive
//! connections to the mock (as sluice keeps them), no response buffering (as an SSE proxy is set
//! up), and nginx's default access log (one line per call, as sluice records every call).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::procs::{Proc, TempDir, free_port};

/// A running nginx; dropping it stops it and removes its directory.
pub struct Nginx {
    pub addr: SocketAddr,
    pub proc: Proc,
    _dir: TempDir,
}

/// The nginx binary: `/usr/sbin/nginx` (Debian's nginx-light), else one on PATH.
pub fn find() -> Option<PathBuf> {
    let sbin = PathBuf::from("/usr/sbin/nginx");
    if sbin.exists() {
        return Some(sbin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("nginx"))
            .find(|p| p.exists())
    })
}

fn config(dir: &Path, listen: SocketAddr, mock: SocketAddr) -> String {
    let d = dir.display();
    format!(
        "daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    # The load generator keeps its connections for the whole run (sluice never closes them).
    keepalive_requests 1000000000;
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    upstream mock {{
        server {mock};
        keepalive 256;
        keepalive_requests 1000000000;
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_buffering off;
        }}
    }}
}}
"
    )
}

/// Start nginx in front of `mock`, on `cpu` when given; returns once it accepts connections.
pub fn start(bin: &Path, mock: SocketAddr, cpu: Option<usize>) -> anyhow::Result<Nginx> {
    let dir = TempDir::new("sluice-bench-nginx")?;
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, config(dir.path(), addr, mock))
        .with_context(|| format!("cannot write {}", conf.display()))?;
    let args = [
        "-p".to_owned(),
        dir.path().display().to_string(),
        "-c".into(),
        conf.display().to_string(),
        "-e".into(),
        dir.path().join("error.log").display().to_string(),
    ];
    let mut proc = Proc::spawn("nginx", bin, &args, cpu, &[])?;
    // nginx prints no address: wait until the port takes a connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            break;
        }
        proc.check_alive().map_err(|err| {
            let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
            err.context(format!("nginx did not start; error.log:\n{log}"))
        })?;
        if Instant::now() >= deadline {
            bail!("nginx did not listen on {addr} within 10 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(Nginx {
        addr,
        proc,
        _dir: dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_proxies_to_the_mock_with_keep_alive() {
        let c = config(
            Path::new("/d"),
            "127.0.0.1:8080".parse().expect("addr"),
            "127.0.0.1:9000".parse().expect("addr"),
        );
        assert!(c.contains("server 127.0.0.1:9000;"));
        assert!(c.contains("listen 127.0.0.1:8080;"));
        assert!(c.contains("proxy_set_header Connection \"\";"));
        assert!(c.contains("master_process off;"));
    }
}
