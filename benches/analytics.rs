//! Analytics on/off throughput benchmark (being written).
fn main() {}
