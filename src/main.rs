use std::process::ExitCode;

fn main() -> ExitCode {
    // Keep freed tensor memory for reuse instead of unmapping it (see dnas::util::malloc).
    dnas::util::malloc::tune_for_tensors();
    match dnas::cli::run(std::env::args_os()) {
        Ok(dnas::cli::Outcome::Ok) => ExitCode::SUCCESS,
        Ok(dnas::cli::Outcome::CheckFailed) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
