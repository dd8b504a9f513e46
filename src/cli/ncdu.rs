//! ncdu 2's command-line flags, so that `alias ncdu=dtui` and an ncdu alias's flags
//! (`ncdu -x --exclude-caches --si`) work. Each one does what ncdu means by it where dtui can
//! (the display ones set how the browser starts), or is accepted with a one-line note on
//! stderr, printed before the browser takes the terminal, saying what dtui does instead;
//! never an error. The flags that change what is scanned (`-X`, `--exclude-caches`,
//! `--exclude-kernfs`, `-L`, `--si`...) are `ScanArgs`', since every command that scans takes
//! them. README's "ncdu's flags" lists them all.

use clap::{Args, ValueEnum};

use crate::ui::Prefs;
use crate::ui::app::SortKey;

/// ncdu's `--sort` columns, with an optional `-asc` or `-desc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortArg {
    DiskUsage,
    DiskUsageAsc,
    DiskUsageDesc,
    Name,
    NameAsc,
    NameDesc,
    ApparentSize,
    ApparentSizeAsc,
    ApparentSizeDesc,
    Itemcount,
    ItemcountAsc,
    ItemcountDesc,
    Mtime,
    MtimeAsc,
    MtimeDesc,
}

impl SortArg {
    /// The column, whether dtui's order for it is reversed, and whether it asks for apparent
    /// sizes (dtui sorts by the size it shows).
    fn key(self) -> (SortKey, bool, bool) {
        use SortArg as S;
        // ncdu's default directions: names A to Z, everything else largest or newest first,
        // which are dtui's unreversed orders too.
        match self {
            S::DiskUsage | S::DiskUsageDesc => (SortKey::Size, false, false),
            S::DiskUsageAsc => (SortKey::Size, true, false),
            S::ApparentSize | S::ApparentSizeDesc => (SortKey::Size, false, true),
            S::ApparentSizeAsc => (SortKey::Size, true, true),
            S::Name | S::NameAsc => (SortKey::Name, false, false),
            S::NameDesc => (SortKey::Name, true, false),
            S::Itemcount | S::ItemcountDesc => (SortKey::Items, false, false),
            S::ItemcountAsc => (SortKey::Items, true, false),
            S::Mtime | S::MtimeDesc => (SortKey::Mtime, false, false),
            S::MtimeAsc => (SortKey::Mtime, true, false),
        }
    }
}

/// ncdu's `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    Off,
    Dark,
    DarkBg,
}

/// ncdu's `--graph-style`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphStyleArg {
    Hash,
    HalfBlock,
    EighthBlock,
}

/// ncdu's `--shared-column`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SharedColumnArg {
    Off,
    Shared,
    Unique,
}

/// ncdu 2's display and behaviour flags (the browser's start, and notes for the rest).
#[derive(Debug, Args, Default)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "one field per ncdu flag, each a switch as in ncdu"
)]
pub struct NcduArgs {
    /// Show apparent sizes instead of disk usage (the browser starts so; `scan` ranks by them)
    #[arg(long, overrides_with = "disk_usage")]
    pub apparent_size: bool,
    /// Show disk usage (the default)
    #[arg(long, hide = true, overrides_with = "apparent_size")]
    disk_usage: bool,
    /// Start the browser with the mtime column shown (ncdu's extended mode)
    #[arg(short = 'e', long, overrides_with = "no_extended")]
    extended: bool,
    #[arg(long, hide = true, overrides_with = "extended")]
    no_extended: bool,
    /// The browser's first sort: disk-usage, name, apparent-size, itemcount or mtime, each
    /// with an optional -asc or -desc
    #[arg(long, value_name = "COLUMN", value_enum)]
    sort: Option<SortArg>,
    /// Start the browser with directories listed before files
    #[arg(long, overrides_with = "no_group_directories_first")]
    group_directories_first: bool,
    #[arg(long, hide = true, overrides_with = "group_directories_first")]
    no_group_directories_first: bool,
    /// Start the browser with hidden and excluded entries listed (the default)
    #[arg(long, hide = true, overrides_with = "hide_hidden")]
    show_hidden: bool,
    /// Start the browser with hidden and excluded entries not listed (as `e` does)
    #[arg(long, overrides_with = "show_hidden")]
    hide_hidden: bool,
    /// Start the browser with the item count column shown
    #[arg(long, overrides_with = "hide_itemcount")]
    show_itemcount: bool,
    #[arg(long, hide = true, overrides_with = "show_itemcount")]
    hide_itemcount: bool,
    /// Start the browser with the mtime column shown
    #[arg(long, overrides_with = "hide_mtime")]
    show_mtime: bool,
    #[arg(long, hide = true, overrides_with = "show_mtime")]
    hide_mtime: bool,
    #[arg(long, hide = true, overrides_with = "hide_graph")]
    show_graph: bool,
    /// Start the browser without the bar column
    #[arg(long, overrides_with = "show_graph")]
    hide_graph: bool,
    #[arg(long, hide = true, overrides_with = "hide_percent")]
    show_percent: bool,
    /// Start the browser without the percent column
    #[arg(long, overrides_with = "show_percent")]
    hide_percent: bool,
    /// `off`: no colours (as NO_COLOR); dark, dark-bg: dtui's colours
    #[arg(long, value_name = "SCHEME", value_enum)]
    color: Option<ColorArg>,
    #[arg(long, hide = true, overrides_with = "disable_shell")]
    enable_shell: bool,
    /// Disable the shell (`b`) in the browser
    #[arg(long, overrides_with = "enable_shell")]
    disable_shell: bool,
    #[arg(long, hide = true, overrides_with = "disable_delete")]
    enable_delete: bool,
    /// Disable delete, the trash and undo (as --no-delete)
    #[arg(long, overrides_with = "enable_delete")]
    disable_delete: bool,
    #[arg(long, hide = true, overrides_with = "disable_refresh")]
    enable_refresh: bool,
    #[arg(long, hide = true, overrides_with = "enable_refresh")]
    disable_refresh: bool,
    #[arg(long, hide = true, overrides_with = "no_confirm_quit")]
    confirm_quit: bool,
    #[arg(long, hide = true, overrides_with = "confirm_quit")]
    no_confirm_quit: bool,
    #[arg(long, hide = true, overrides_with = "no_confirm_delete")]
    confirm_delete: bool,
    #[arg(long, hide = true, overrides_with = "confirm_delete")]
    no_confirm_delete: bool,
    #[arg(long, hide = true, value_name = "CMD")]
    delete_command: Option<String>,
    #[arg(long, hide = true, value_name = "STYLE", value_enum)]
    graph_style: Option<GraphStyleArg>,
    #[arg(long, hide = true, value_name = "WHICH", value_enum)]
    shared_column: Option<SharedColumnArg>,
    #[arg(long, hide = true, overrides_with = "disable_natsort")]
    enable_natsort: bool,
    #[arg(long, hide = true, overrides_with = "enable_natsort")]
    disable_natsort: bool,
    #[arg(short = '0', hide = true)]
    ui_none: bool,
    #[arg(short = '1', hide = true)]
    ui_line: bool,
    #[arg(short = '2', hide = true)]
    ui_full: bool,
    #[arg(short = 'q', long, hide = true, overrides_with = "fast_ui_updates")]
    slow_ui_updates: bool,
    #[arg(long, hide = true, overrides_with = "slow_ui_updates")]
    fast_ui_updates: bool,
    #[arg(long, hide = true)]
    ignore_config: bool,
    #[arg(short = 'c', long, hide = true, overrides_with = "no_compress")]
    compress: bool,
    #[arg(long, hide = true, overrides_with = "compress")]
    no_compress: bool,
    #[arg(long, hide = true, value_name = "N")]
    compress_level: Option<u32>,
    #[arg(long, hide = true, value_name = "N")]
    export_block_size: Option<u32>,
}

impl NcduArgs {
    /// How the browser starts.
    #[must_use]
    pub fn prefs(&self) -> Prefs {
        let on_off = |on: bool, off: bool| {
            if on {
                Some(true)
            } else if off {
                Some(false)
            } else {
                None
            }
        };
        let sort = self.sort.map(SortArg::key);
        Prefs {
            sort: sort.map(|(key, reverse, _)| (key, reverse)),
            dirs_first: on_off(
                self.group_directories_first,
                self.no_group_directories_first,
            ),
            apparent: if sort.is_some_and(|(_, _, apparent)| apparent) {
                Some(true)
            } else {
                on_off(self.apparent_size, self.disk_usage)
            },
            graph: on_off(self.show_graph, self.hide_graph),
            percent: on_off(self.show_percent, self.hide_percent),
            show_items: on_off(self.show_itemcount, self.hide_itemcount),
            show_mtime: on_off(self.extended || self.show_mtime, self.hide_mtime),
            hide_hidden: on_off(self.hide_hidden, self.show_hidden),
            color: self.color.map(|c| c != ColorArg::Off),
            no_shell: self.disable_shell,
        }
    }

    /// `--disable-delete`.
    #[must_use]
    pub fn no_delete(&self) -> bool {
        self.disable_delete
    }

    /// One line per flag dtui accepts but does not act on, saying what it does instead.
    #[must_use]
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let mut note = |on: bool, flag: &str, why: &str| {
            if on {
                notes.push(format!("{flag}: {why}"));
            }
        };
        note(
            self.disable_refresh,
            "--disable-refresh",
            "ignored (dtui keeps the tree current itself; r only re-reads a directory)",
        );
        note(
            self.confirm_quit,
            "--confirm-quit",
            "ignored (quitting loses nothing: the tree is cached)",
        );
        note(
            self.no_confirm_delete,
            "--no-confirm-delete",
            "ignored (dtui always asks before deleting)",
        );
        note(
            self.delete_command.is_some(),
            "--delete-command",
            "ignored (dtui deletes itself; D moves to the trash)",
        );
        note(
            self.graph_style.is_some_and(|s| s != GraphStyleArg::Hash),
            "--graph-style",
            "ignored (dtui draws its bar with #, the hash style)",
        );
        note(
            self.shared_column
                .is_some_and(|s| s != SharedColumnArg::Off),
            "--shared-column",
            "ignored (dtui has no shared column; H marks a hard link counted elsewhere)",
        );
        note(
            self.enable_natsort,
            "--enable-natsort",
            "ignored (dtui sorts names byte by byte)",
        );
        note(
            self.ui_none || self.ui_line || self.ui_full,
            "-0/-1/-2",
            "ignored (dtui browses while it scans; `dtui scan` prints one progress line)",
        );
        note(
            self.slow_ui_updates,
            "-q",
            "ignored (dtui redraws at most 30 times a second)",
        );
        note(
            self.ignore_config,
            "--ignore-config",
            "ignored (dtui reads no configuration file)",
        );
        note(
            self.compress || self.compress_level.is_some(),
            "-c/--compress",
            "ignored (exports are written uncompressed; pipe `-o -` through zstd)",
        );
        note(
            self.export_block_size.is_some(),
            "--export-block-size",
            "ignored (dtui writes ncdu's JSON format, which has no blocks)",
        );
        notes
    }
}
