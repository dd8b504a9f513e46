//! `d` (delete), `D` (move to the trash) and `u` (undo the last move to the trash): the
//! dialogs and their keys. The work itself is `delete::worker`'s, on its own thread: `update`
//! only asks for it (`Command::Delete`), answers its questions (`Command::DeleteAnswer`) and
//! shows its messages (`Event::Delete`). What goes is planned (counted) by the worker first;
//! the confirmation shows the plan, and the plan is what the delete keeps to.

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::{App, Command, Sel};
use crate::delete::command::names;
use crate::delete::trash::Trashed;
use crate::delete::worker::{DeleteMsg, Job, Summary};
use crate::delete::{Decision, Plan, Target};
use crate::tree::Tree;

/// The buttons of a confirmation, left to right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    No,
    Yes,
    /// Yes, and do not ask again while this browser runs.
    Always,
}

/// What a job is doing, for the progress dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doing {
    Delete,
    Trash,
    Restore,
}

/// The delete dialogs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialog {
    /// What would go is being counted (`items` so far) before the confirmation.
    Counting {
        trash: bool,
        again: bool,
        items: u64,
        cancelling: bool,
    },
    /// Delete (or trash) what the plan holds? `again`: it changed on disk since it was shown.
    Confirm {
        plan: Plan,
        trash: bool,
        focus: Button,
        again: bool,
    },
    /// No trash could take these (why): delete them instead?
    NoTrash {
        plan: Plan,
        why: String,
        focus: Button,
    },
    /// A job runs: its progress, and a question when an error needs an answer.
    Running {
        doing: Doing,
        items: u64,
        bytes: u64,
        total_items: u64,
        total_bytes: u64,
        /// An error waiting for abort (0), ignore (1) or ignore all (2), and the focus.
        error: Option<(String, u8)>,
        cancelling: bool,
    },
    /// What could not go.
    Summary { title: String, lines: Vec<String> },
}

/// Delete state that lasts across dialogs.
#[derive(Debug, Clone, Default)]
pub struct DeleteState {
    pub dialog: Option<Dialog>,
    /// `-r` or `--no-delete`: why `d` is refused.
    pub disabled: Option<String>,
    /// "Don't ask again" was chosen: confirmations are skipped for this run.
    pub dont_ask: bool,
    /// What the last move to the trash moved (`u` puts it back).
    pub last_trash: Vec<Trashed>,
    /// Space freed by deletes in this run.
    pub freed: u64,
    /// Entries no trash took, offered for deletion once the job is done.
    no_trash: Option<(Plan, String)>,
}

impl App {
    /// `d` and `D`: the marked entries, else the selected one, confirmed first.
    pub(super) fn delete_key(&mut self, tree: &Tree, trash: bool) {
        if let Some(why) = &self.delete.disabled {
            self.message = Some(format!("{why}: delete is disabled"));
            return;
        }
        if self.busy() {
            self.message = Some(format!(
                "{} already: delete waits until it ends",
                self.state_word()
            ));
            return;
        }
        let mut targets: Vec<Target> = self
            .marked
            .iter()
            .filter_map(|&m| tree.resolve(m))
            .map(|id| Target::of(tree, id))
            .collect();
        if targets.is_empty()
            && let Sel::Node(id) = self.selected
        {
            targets.push(Target::of(tree, id));
        }
        if targets.is_empty() {
            self.message = Some("nothing selected to delete".into());
            return;
        }
        self.delete.dialog = Some(Dialog::Counting {
            trash,
            again: false,
            items: 0,
            cancelling: false,
        });
        self.commands
            .push(Command::Delete(Job::Plan(crate::delete::outermost(
                targets,
            ))));
        self.follow_delete(tree);
    }

    /// `u`: the last move to the trash goes back.
    pub(super) fn undo_key(&mut self) {
        if let Some(why) = &self.delete.disabled {
            self.message = Some(format!("{why}: undo is disabled"));
            return;
        }
        // Kept until they are back: what fails stays for another `u`.
        let items = self.delete.last_trash.clone();
        if items.is_empty() {
            self.message = Some("nothing to undo (u puts back the last move to the trash)".into());
            return;
        }
        self.delete.dialog = Some(Dialog::Running {
            doing: Doing::Restore,
            items: 0,
            bytes: 0,
            total_items: items.iter().map(|t| t.items).sum(),
            total_bytes: items.iter().map(|t| t.disk).sum(),
            error: None,
            cancelling: false,
        });
        self.commands.push(Command::Delete(Job::Restore(items)));
    }

    fn start(&mut self, plan: Plan, trash: bool) {
        // The cursor stays on its screen row: the next entry takes it, not the top.
        self.follow_top = false;
        self.delete.dialog = Some(Dialog::Running {
            doing: if trash { Doing::Trash } else { Doing::Delete },
            items: 0,
            bytes: 0,
            total_items: plan.items(),
            total_bytes: plan.disk(),
            error: None,
            cancelling: false,
        });
        self.commands.push(Command::Delete(if trash {
            Job::Trash(plan)
        } else {
            Job::Delete(plan)
        }));
    }

    /// A key while a delete dialog is open.
    pub(super) fn dialog_key(&mut self, k: KeyEvent) {
        // The dialogs that wait on the worker change in place.
        match &mut self.delete.dialog {
            Some(Dialog::Counting { cancelling, .. }) => {
                let cancel = matches!(k.code, KeyCode::Esc | KeyCode::Char('c' | 'q' | 'n'));
                cancel_on(&mut self.commands, cancel, cancelling);
                return;
            }
            Some(Dialog::Running {
                error: None,
                cancelling,
                ..
            }) => {
                // ncdu's key (q) too.
                let cancel = matches!(k.code, KeyCode::Esc | KeyCode::Char('c' | 'q'));
                cancel_on(&mut self.commands, cancel, cancelling);
                return;
            }
            Some(Dialog::Running { error, .. }) => {
                answer_error(&mut self.commands, k.code, error);
                return;
            }
            _ => {}
        }
        let Some(dialog) = self.delete.dialog.take() else {
            return;
        };
        self.delete.dialog = match dialog {
            Dialog::Confirm {
                plan,
                trash,
                focus,
                again,
            } => match confirm(k.code, focus) {
                Choice::Focus(focus) => Some(Dialog::Confirm {
                    plan,
                    trash,
                    focus,
                    again,
                }),
                Choice::Take(Button::No) => None,
                Choice::Take(b) => {
                    self.delete.dont_ask |= b == Button::Always;
                    self.start(plan, trash);
                    return;
                }
            },
            Dialog::NoTrash { plan, why, focus } => match confirm(k.code, focus) {
                Choice::Focus(focus) => Some(Dialog::NoTrash { plan, why, focus }),
                Choice::Take(Button::No) => None,
                Choice::Take(_) => {
                    self.start(plan, false);
                    return;
                }
            },
            // Answered in place above.
            waiting @ (Dialog::Counting { .. } | Dialog::Running { .. }) => Some(waiting),
            Dialog::Summary { title, lines } => {
                if matches!(k.code, KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q')) {
                    self.offer_no_trash()
                } else {
                    Some(Dialog::Summary { title, lines })
                }
            }
        };
    }

    /// A message from the delete worker.
    pub(super) fn delete_msg(&mut self, msg: DeleteMsg) {
        match msg {
            DeleteMsg::Progress { items, bytes } => match &mut self.delete.dialog {
                Some(Dialog::Running {
                    items: i, bytes: b, ..
                }) => (*i, *b) = (items, bytes),
                Some(Dialog::Counting { items: i, .. }) => *i = items,
                _ => {}
            },
            DeleteMsg::Planned(plan) => self.planned(plan),
            DeleteMsg::Failed(e) => {
                if let Some(Dialog::Running { error, .. }) = &mut self.delete.dialog {
                    *error = Some((e.to_string(), 0));
                }
            }
            DeleteMsg::Changed(plan) => {
                let trash = matches!(
                    self.delete.dialog,
                    Some(Dialog::Running {
                        doing: Doing::Trash,
                        ..
                    })
                );
                if plan.targets.is_empty() {
                    // Nothing left to ask about (what changed is now refused).
                    self.delete.dialog = None;
                    self.message = Some(refused_message(&plan));
                    return;
                }
                // Asked again, whatever "don't ask again" said: this is not what was shown.
                self.delete.dialog = Some(Dialog::Confirm {
                    plan,
                    trash,
                    focus: Button::No,
                    again: true,
                });
            }
            DeleteMsg::NoTrash { plan, why } => self.delete.no_trash = Some((plan, why)),
            DeleteMsg::Done(s) if matches!(self.delete.dialog, Some(Dialog::Counting { .. })) => {
                // Counting was cancelled (or its worker could not start).
                self.delete.dialog = None;
                self.message = Some(match s.failed.first() {
                    Some(why) => why.clone(),
                    None => "cancelled: nothing was deleted".into(),
                });
            }
            DeleteMsg::Done(s) => self.done(s),
        }
    }

    /// The plan of `d` or `D` is counted: confirmed (unless "don't ask again" was chosen).
    fn planned(&mut self, plan: Plan) {
        let Some(Dialog::Counting {
            trash,
            again,
            cancelling,
            ..
        }) = self.delete.dialog
        else {
            return;
        };
        if cancelling {
            self.delete.dialog = None;
            self.message = Some("cancelled: nothing was deleted".into());
        } else if plan.targets.is_empty() {
            // Everything asked for is refused: nothing to ask about.
            self.delete.dialog = None;
            self.message = Some(refused_message(&plan));
        } else if self.delete.dont_ask
            && !again
            && plan.uncounted.is_empty()
            && plan.refused.is_empty()
        {
            self.start(plan, trash);
        } else {
            self.delete.dialog = Some(Dialog::Confirm {
                plan,
                trash,
                focus: Button::No,
                again,
            });
        }
    }

    fn done(&mut self, s: Summary) {
        let doing = match &self.delete.dialog {
            Some(Dialog::Running { doing, .. }) => *doing,
            _ => Doing::Delete,
        };
        self.delete.freed += s.bytes;
        let how = if s.aborted {
            " (aborted)"
        } else if s.cancelled {
            " (cancelled)"
        } else {
            ""
        };
        self.message = Some(match doing {
            Doing::Delete => format!(
                "deleted {}, freed {}{how} · {} freed this run",
                crate::delete::count(s.items, "item", "items"),
                crate::format::size(s.bytes),
                crate::format::size(self.delete.freed)
            ),
            // Nothing went (no trash could take it, or it failed): never "moved".
            Doing::Trash if s.trashed.is_empty() => match &self.delete.no_trash {
                Some((_, why)) => format!("nothing moved to the trash: {why}"),
                None => format!("nothing moved to the trash{how}"),
            },
            Doing::Trash => format!(
                "moved {} to the trash{how} (u puts it back)",
                names_of_trashed(&s.trashed)
            ),
            Doing::Restore if s.failed.is_empty() => format!(
                "put back {} from the trash",
                crate::delete::count(s.restored.len() as u64, "entry", "entries")
            ),
            Doing::Restore => format!(
                "put back {} from the trash; {} could not be (u tries again)",
                crate::delete::count(s.restored.len() as u64, "entry", "entries"),
                s.failed.len()
            ),
        });
        if doing == Doing::Restore {
            // What is back is done; what failed stays for another `u`.
            self.delete
                .last_trash
                .retain(|t| !s.restored.contains(&t.original));
        }
        if !s.trashed.is_empty() {
            self.delete.last_trash = s.trashed;
        }
        let failed = s.failed.len();
        let more = s.left.saturating_sub(s.left_lines.len() as u64);
        let mut lines = s.failed;
        lines.extend(s.left_lines);
        if more > 0 {
            lines.push(format!(
                "and {} more left (not what was confirmed)",
                crate::delete::count(more, "entry", "entries")
            ));
        }
        let title = match (doing, failed) {
            (Doing::Restore, n) => format!(" {n} could not be put back "),
            (_, 0) => format!(
                " {} left: not what was confirmed ",
                crate::delete::count(s.left, "entry", "entries")
            ),
            (_, n) => format!(" {n} could not go "),
        };
        self.delete.dialog = if lines.is_empty() {
            self.offer_no_trash()
        } else {
            Some(Dialog::Summary { title, lines })
        };
    }

    fn offer_no_trash(&mut self) -> Option<Dialog> {
        self.delete
            .no_trash
            .take()
            .map(|(plan, why)| Dialog::NoTrash {
                plan,
                why,
                focus: Button::No,
            })
    }
}

/// What the status line says of a plan with nothing left to delete.
fn refused_message(plan: &Plan) -> String {
    match plan.refused.as_slice() {
        [] => "nothing to delete (nothing was deleted)".into(),
        [e] => format!("cannot delete: {e}"),
        [e, rest @ ..] => format!("cannot delete: {e}, and {} more", rest.len()),
    }
}

fn names_of_trashed(t: &[Trashed]) -> String {
    let targets: Vec<Target> = t
        .iter()
        .map(|t| Target {
            path: t.original.clone(),
            dev: t.dev,
            ino: Some(t.ino),
            kind: t.kind,
            apparent: 0,
            mtime: 0,
            disk: t.disk,
            items: t.items,
            bare: false,
        })
        .collect();
    names(&targets)
}

/// A cancel key while the worker counts or deletes: the worker is asked to stop (once).
fn cancel_on(commands: &mut Vec<Command>, cancel: bool, cancelling: &mut bool) {
    if cancel && !*cancelling {
        commands.push(Command::DeleteCancel);
    }
    *cancelling |= cancel;
}

/// A key while the worker's error waits for abort (0), ignore (1) or ignore all (2): an
/// answer goes to the worker and closes the question, the other keys move the focus.
fn answer_error(commands: &mut Vec<Command>, code: KeyCode, error: &mut Option<(String, u8)>) {
    let Some((_, focus)) = error else {
        return;
    };
    let answer = match code {
        KeyCode::Char('a' | 'q') | KeyCode::Esc => Some(Decision::Abort),
        KeyCode::Char('i') => Some(Decision::Ignore),
        KeyCode::Char('A' | 'I') => Some(Decision::IgnoreAll),
        KeyCode::Enter => Some(match focus {
            0 => Decision::Abort,
            1 => Decision::Ignore,
            _ => Decision::IgnoreAll,
        }),
        _ => None,
    };
    if let Some(d) = answer {
        commands.push(Command::DeleteAnswer(d));
        *error = None;
        return;
    }
    *focus = match code {
        KeyCode::Tab | KeyCode::Right | KeyCode::Char('l') => (*focus + 1) % 3,
        KeyCode::BackTab | KeyCode::Left | KeyCode::Char('h') => (*focus + 2) % 3,
        _ => *focus,
    };
}

enum Choice {
    Focus(Button),
    Take(Button),
}

/// A key in a confirmation: `y` yes, `n` and Esc no, Enter the focused button, Tab and the
/// arrows move the focus.
fn confirm(code: KeyCode, focus: Button) -> Choice {
    let order = [Button::No, Button::Yes, Button::Always];
    let at = order.iter().position(|&b| b == focus).unwrap_or(0);
    match code {
        KeyCode::Char('y' | 'Y') => Choice::Take(Button::Yes),
        KeyCode::Char('n' | 'N' | 'q') | KeyCode::Esc => Choice::Take(Button::No),
        KeyCode::Enter => Choice::Take(focus),
        KeyCode::Tab | KeyCode::Right | KeyCode::Char('l') => Choice::Focus(order[(at + 1) % 3]),
        KeyCode::BackTab | KeyCode::Left | KeyCode::Char('h') => Choice::Focus(order[(at + 2) % 3]),
        _ => Choice::Focus(focus),
    }
}
