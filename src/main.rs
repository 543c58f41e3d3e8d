fn main() {
    std::process::exit(shipway::run());
}
