//! Shell integration: completion scripts (`dtui completions SHELL`, from clap_complete) and
//! the manual page (`dtui man`, from clap_mangen), both generated from the one `Cli`
//! definition, so they never drift from the parser.

use std::io::{self, Write};

use anyhow::{Context, Result};
use clap::CommandFactory;
use roff::{Roff, bold, roman};

use super::Cli;

/// Writes the completion script for `shell` to `out`.
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn Write) -> Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "dtui", out);
    out.flush().context("writing the completion script")
}

/// Writes the manual page (roff) to `out`: `dtui(1)`, one page for every command (a section
/// per subcommand, no `dtui-scan(1)` pages to install apart) and the browser's keys.
pub fn write_man(out: &mut dyn Write) -> Result<()> {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)
        .and_then(|()| man.render_name_section(out))
        .and_then(|()| man.render_synopsis_section(out))
        .and_then(|()| man.render_description_section(out))
        .and_then(|()| man.render_options_section(out))
        .and_then(|()| render_command_list(&cmd, out))
        .and_then(|()| render_keys(out))
        .and_then(|()| render_subcommand_details(&cmd, out))
        .and_then(|()| render_exit_status(&cmd, out))
        .and_then(|()| man.render_version_section(out))
        .and_then(|()| out.flush())
        .context("writing the manual page")
}

/// The subcommands a user runs (not clap's `help`).
fn subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

fn full_name(cmd: &clap::Command) -> String {
    cmd.get_bin_name().unwrap_or(cmd.get_name()).to_owned()
}

/// `COMMANDS`: each subcommand and what it does (clap_mangen would point at separate pages).
fn render_command_list(cmd: &clap::Command, out: &mut dyn Write) -> io::Result<()> {
    let mut page = Roff::new();
    page.control("SH", ["COMMANDS"]);
    for sub in subcommands(cmd) {
        let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
        page.control("TP", [])
            .text([bold(format!("{} {}", full_name(cmd), sub.get_name()))])
            .text([roman(about)]);
    }
    page.to_writer(out)
}

/// `KEYS`: the browser's keys, the same table as its help window.
fn render_keys(out: &mut dyn Write) -> io::Result<()> {
    let mut page = Roff::new();
    page.control("SH", ["KEYS"]);
    for (keys, what) in crate::ui::keys::help() {
        if keys.is_empty() {
            page.control("br", []).text([roman(what)]);
        } else {
            page.control("TP", [])
                .text([bold(keys)])
                .text([roman(what)]);
        }
    }
    page.to_writer(out)
}

/// `EXIT STATUS`: the after-help text (clap_mangen would title it `EXTRA`).
fn render_exit_status(cmd: &clap::Command, out: &mut dyn Write) -> io::Result<()> {
    let Some(text) = cmd.get_after_help() else {
        return Ok(());
    };
    let mut page = Roff::new();
    page.control("SH", ["EXIT STATUS"])
        .text([roman(text.to_string())]);
    page.to_writer(out)
}

/// One section per subcommand (`DTUI SCAN`, then `DTUI CACHE LIST` after `DTUI CACHE`) with
/// its synopsis and options.
fn render_subcommand_details(cmd: &clap::Command, out: &mut dyn Write) -> io::Result<()> {
    for sub in subcommands(cmd) {
        let name = format!("{} {}", full_name(cmd), sub.get_name());
        let sub = sub.clone().bin_name(name.clone());
        let mut head = Roff::new();
        head.control("SH", [name.to_uppercase().as_str()]);
        if let Some(about) = sub.get_about() {
            head.text([roman(about.to_string())]);
        }
        head.to_writer(out)?;
        // clap_mangen writes `.SH` headings; under this command's they become `.SS`.
        let man = clap_mangen::Man::new(sub.clone());
        let mut buf = Vec::new();
        man.render_synopsis_section(&mut buf)?;
        man.render_options_section(&mut buf)?;
        let text = String::from_utf8_lossy(&buf).replace(".SH ", ".SS ");
        out.write_all(text.as_bytes())?;
        render_subcommand_details(&sub, out)?;
    }
    Ok(())
}
