//! The `liaisond` binary: everything happens in [`liaisond::cli`].

fn main() -> std::process::ExitCode {
    liaisond::cli::main()
}
