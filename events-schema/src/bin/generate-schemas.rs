//! Rewrites `events-schema/schemas/` from the contract types (run after changing a type; the drift test
//! fails until the committed files match).

use std::path::Path;

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    std::fs::create_dir_all(&dir)?;
    for document in spark_gateway_events::schema::all() {
        let path = dir.join(document.file_name());
        std::fs::write(&path, document.to_file_contents())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
