//! `ocuroot repl [FILE] [-c EXPR]`: a file's globals and the SDK at a
//! prompt (rustyline), for one expression, or for a program on stdin.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use ocuroot_core::sdk::{LogLine, ReplIo, ReplValue, input_is_complete};
use ocuroot_core::{Error, Workspace};

use crate::{render, write};

/// Inputs given up front (`-c`, or stdin that is not a terminal): the first
/// error ends the session, and the exit status.
struct Given {
    inputs: Vec<String>,
    failed: bool,
}

impl ReplIo for Given {
    fn read(&mut self) -> Option<String> {
        (!self.inputs.is_empty()).then(|| self.inputs.remove(0))
    }
    fn print(&mut self, line: &LogLine) {
        write(&format!("{}\n", line.message));
    }
    fn result(&mut self, result: ocuroot_core::Result<Option<ReplValue>>) -> bool {
        match result {
            Ok(value) => {
                if let Some(v) = value {
                    write(&format!("{}\n", v.repr));
                }
                true
            }
            Err(e) => {
                eprintln!("{}", render::error(&e));
                self.failed = true;
                false
            }
        }
    }
}

/// A prompt on the terminal: an input is read until it is complete (a
/// block ends with an empty line); errors are shown and the session goes
/// on; Ctrl-D ends it, Ctrl-C drops the input being typed.
struct Prompt {
    editor: rustyline::DefaultEditor,
}

impl ReplIo for Prompt {
    fn read(&mut self) -> Option<String> {
        let mut input = String::new();
        loop {
            let prompt = if input.is_empty() { ">>> " } else { "... " };
            match self.editor.readline(prompt) {
                Ok(line) => {
                    if input.is_empty() && line.trim().is_empty() {
                        continue;
                    }
                    input.push_str(&line);
                    input.push('\n');
                    if input_is_complete(&input) {
                        let _ = self.editor.add_history_entry(input.trim_end());
                        return Some(input);
                    }
                }
                Err(rustyline::error::ReadlineError::Interrupted) => input.clear(),
                Err(_) => return None,
            }
        }
    }
    fn print(&mut self, line: &LogLine) {
        println!("{}", line.message);
    }
    fn result(&mut self, result: ocuroot_core::Result<Option<ReplValue>>) -> bool {
        match result {
            Ok(Some(v)) => println!("{}", v.repr),
            Ok(None) => {}
            Err(e) => eprintln!("{}", render::error(&e)),
        }
        true
    }
}

/// Run the session; exit 1 when the file, or a given input, fails.
pub fn run(file: Option<PathBuf>, command: Option<String>) -> Result<ExitCode, Error> {
    let ws = Workspace::open(".")?;
    let file = file.or_else(|| {
        let config = ws.root().join(ocuroot_core::repo::REPO_CONFIG_FILE);
        config.is_file().then_some(config)
    });
    let interactive = command.is_none() && std::io::stdin().is_terminal();
    if interactive {
        let editor = rustyline::DefaultEditor::new()
            .map_err(|e| Error::host(format!("cannot start the prompt: {e}")))?;
        eprintln!(
            "Ocuroot {} (SDK {}){}; Ctrl-D to exit",
            env!("CARGO_PKG_VERSION"),
            ocuroot_core::sdk::SDK_VERSION,
            file.as_ref()
                .map(|f| format!(", {} loaded", f.display()))
                .unwrap_or_default()
        );
        ws.repl(file.as_deref(), &mut Prompt { editor })?;
        return Ok(ExitCode::SUCCESS);
    }
    let input = match command {
        Some(c) => c,
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Error::invalid_input(format!("repl: cannot read stdin: {e}")))?;
            text
        }
    };
    let mut given = Given {
        inputs: vec![input],
        failed: false,
    };
    ws.repl(file.as_deref(), &mut given)?;
    Ok(crate::code(given.failed))
}
