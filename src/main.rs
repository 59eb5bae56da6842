fn main() {
    prefect_doctor::redact::install_panic_hook();
    let _ = rustls::crypto::ring::default_provider().install_default();
    std::process::exit(prefect_doctor::cli::run_from(std::env::args_os()));
}
