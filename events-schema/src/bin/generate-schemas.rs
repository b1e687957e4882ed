//! Rewrites `events-schema/schemas/` from the contract types (run after changing a type; the drift test
//! fails until the committed files match).

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    // The package directory cargo or nextest names at run time: a binary reused from another checkout
    // (one shared target dir) would otherwise read that checkout's files.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("schemas");
    std::fs::create_dir_all(&dir)?;
    for document in spark_gateway_events::schema::all() {
        let path = dir.join(document.file_name());
        std::fs::write(&path, document.to_file_contents())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
