//! Prints the generated OpenAPI document (the content of `openapi.json`).
fn main() {
    print!("{}", tools::openapi::document_json());
}
