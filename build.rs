//! Build script: keeps `cargo build` working without the frontend toolchain, and
//! makes refinery notice new migration files.
use std::path::Path;

fn main() {
    // rust-embed needs the folder to exist at compile time; the Makefile fills it
    // with the real UI (npm run build) before cargo runs.
    let dist = Path::new("frontend/dist");
    if !dist.exists() {
        std::fs::create_dir_all(dist).expect("create frontend/dist");
        std::fs::write(
            dist.join("index.html"),
            "<!doctype html><title>sluice</title><p>The web UI was not built: run <code>make frontend</code>.</p>\n",
        )
        .expect("write placeholder index.html");
    }
    println!("cargo:rerun-if-changed=frontend/dist");
    // refinery embeds schema/ at compile time but does not watch for new files.
    println!("cargo:rerun-if-changed=schema");
}
