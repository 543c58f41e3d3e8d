// The bundled buildpacks are embedded with include_dir, which cannot tell cargo what it
// read: rebuild whenever a file under buildpacks/ changes.
fn main() {
    println!("cargo:rerun-if-changed=buildpacks");
}
