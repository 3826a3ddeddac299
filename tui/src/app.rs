//! The UI's own state (which view, selection, filter) and what keys do to it.

use std::net::IpAddr;

use heir_api::{Device, Indicator, Peer, Stored};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::state::State;

/// The views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Overview,
    Devices,
    Alerts,
    Observatory,
    Mesh,
    Response,
}

impl View {
    pub const ALL: [View; 6] = [
        View::Overview,
        View::Devices,
        View::Alerts,
        View::Observatory,
        View::Mesh,
        View::Response,
    ];

    pub const fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Devices => "Devices",
            View::Alerts => "Alerts",
            View::Observatory => "Observatory",
            View::Mesh => "Mesh",
            View::Response => "Response",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Views with a list the `/` filter applies to.
    pub const fn filters(self) -> bool {
        matches!(
            self,
            View::Devices | View::Alerts | View::Observatory | View::Mesh
        )
    }
}

/// How the Devices table is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Score,
    Name,
    Class,
    Criticality,
}

impl Sort {
    fn next(self) -> Sort {
        match self {
            Sort::Score => Sort::Name,
            Sort::Name => Sort::Class,
            Sort::Class => Sort::Criticality,
            Sort::Criticality => Sort::Score,
        }
    }

    pub const fn label(self) -> &'static str {
        match self {
            Sort::Score => "score",
            Sort::Name => "name",
            Sort::Class => "class",
            Sort::Criticality => "criticality",
        }
    }
}

/// Something only the agent can do; the sync task carries it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Acknowledge(u64),
    Approve(String),
    Deny(String),
    Unblock(IpAddr),
    /// Keep the explanation of this device current.
    Explain(String),
}

/// What a key press asks of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Nothing,
    Quit,
    Send(Request),
}

/// An entry of the Response view's list: pending approvals first, then active blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseItem {
    Pending(String),
    Active(IpAddr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub view: View,
    pub help: bool,
    /// The `/` filter text, per session (applies to the view's list).
    pub filter: String,
    /// Typing into the filter.
    pub editing: bool,
    pub sort: Sort,
    pub descending: bool,
    /// Only alerts nobody acknowledged.
    pub unacknowledged_only: bool,
    /// Alert detail open.
    pub detail: bool,
    /// Selected row per view, and the identity of the row selected there.
    pub selected: [usize; 6],
    pub anchor: [Option<String>; 6],
}

impl Default for App {
    fn default() -> Self {
        Self {
            view: View::Overview,
            help: false,
            filter: String::new(),
            editing: false,
            sort: Sort::Score,
            descending: true,
            unacknowledged_only: false,
            detail: false,
            selected: [0; 6],
            anchor: Default::default(),
        }
    }
}

fn matches(filter: &str, fields: &[&str]) -> bool {
    if filter.is_empty() {
        return true;
    }
    let f = filter.to_lowercase();
    fields.iter().any(|x| x.to_lowercase().contains(&f))
}

impl App {
    /// The selected row of the current view.
    pub fn selection(&self, s: &State) -> usize {
        self.index_in(self.view, &self.keys(self.view, s))
    }

    /// Rows are selected by identity (alert seq, device id, ...), so a new alert arriving at
    /// the top or a device's score changing its rank never moves the selection to another
    /// row under the operator's finger; the index is the fallback when the row went away.
    fn index_in(&self, view: View, keys: &[String]) -> usize {
        let i = view.index();
        self.anchor[i]
            .as_ref()
            .and_then(|k| keys.iter().position(|x| x == k))
            .unwrap_or_else(|| self.selected[i].min(keys.len().saturating_sub(1)))
    }

    /// The identities of a view's rows, in display order.
    fn keys(&self, view: View, s: &State) -> Vec<String> {
        match view {
            View::Overview => Vec::new(),
            View::Devices => self.devices(s).iter().map(|d| d.id.clone()).collect(),
            View::Alerts => self.alerts(s).iter().map(|a| a.seq.to_string()).collect(),
            View::Observatory => self.indicators(s).iter().map(|i| i.id.clone()).collect(),
            View::Mesh => self.peers(s).iter().map(|p| p.id.clone()).collect(),
            View::Response => self
                .response_items(s)
                .iter()
                .map(|r| match r {
                    ResponseItem::Pending(id) => format!("pending {id}"),
                    ResponseItem::Active(addr) => format!("active {addr}"),
                })
                .collect(),
        }
    }

    /// The Devices table's rows: filtered, then sorted.
    pub fn devices<'a>(&self, s: &'a State) -> Vec<&'a Device> {
        let mut v: Vec<&Device> = s
            .devices
            .iter()
            .filter(|d| {
                let ip = d.ip.map(|i| i.to_string()).unwrap_or_default();
                matches(
                    &self.filter,
                    &[
                        &d.id,
                        &d.name,
                        d.class.as_str(),
                        d.criticality.as_str(),
                        d.score.band.as_str(),
                        &ip,
                        d.manufacturer.as_deref().unwrap_or(""),
                        d.model.as_deref().unwrap_or(""),
                    ],
                )
            })
            .collect();
        v.sort_by(|a, b| {
            let o = match self.sort {
                Sort::Score => a.score.value.total_cmp(&b.score.value),
                Sort::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
                Sort::Class => a.class.as_str().cmp(b.class.as_str()),
                Sort::Criticality => a.criticality.cmp(&b.criticality),
            };
            let o = o.then_with(|| a.id.cmp(&b.id));
            if self.descending { o.reverse() } else { o }
        });
        v
    }

    /// The Alerts list's rows: filtered, newest first.
    pub fn alerts<'a>(&self, s: &'a State) -> Vec<&'a Stored> {
        s.alerts
            .iter()
            .filter(|a| !self.unacknowledged_only || a.acknowledged.is_none())
            .filter(|a| {
                let x = &a.alert;
                let src = x.src_ip.map(|i| i.to_string()).unwrap_or_default();
                matches(
                    &self.filter,
                    &[
                        &x.title,
                        &x.rule,
                        x.category.slug(),
                        x.severity.as_str(),
                        x.device.as_deref().unwrap_or(""),
                        &src,
                    ],
                )
            })
            .collect()
    }

    /// The Observatory's indicator rows (empty when the mesh is not available).
    pub fn indicators<'a>(&self, s: &'a State) -> Vec<&'a Indicator> {
        s.indicators
            .as_ref()
            .and_then(|i| i.available())
            .map_or(Vec::new(), |v| {
                v.iter()
                    .filter(|i| {
                        matches(
                            &self.filter,
                            &[
                                &i.value,
                                &i.kind,
                                i.category.slug(),
                                i.device_model.as_deref().unwrap_or(""),
                            ],
                        )
                    })
                    .collect()
            })
    }

    /// The Mesh view's peer rows.
    pub fn peers<'a>(&self, s: &'a State) -> Vec<&'a Peer> {
        s.peers
            .as_ref()
            .and_then(|p| p.available())
            .map_or(Vec::new(), |v| {
                v.iter()
                    .filter(|p| matches(&self.filter, &[&p.id, p.name.as_deref().unwrap_or("")]))
                    .collect()
            })
    }

    pub fn response_items(&self, s: &State) -> Vec<ResponseItem> {
        let Some(b) = s.blocks.as_ref().and_then(|b| b.available()) else {
            return Vec::new();
        };
        b.pending
            .iter()
            .map(|p| ResponseItem::Pending(p.id.clone()))
            .chain(b.active.iter().map(|a| ResponseItem::Active(a.addr)))
            .collect()
    }

    /// The device whose explanation the Devices view shows.
    pub fn selected_device<'a>(&self, s: &'a State) -> Option<&'a Device> {
        let rows = self.devices(s);
        let keys: Vec<String> = rows.iter().map(|d| d.id.clone()).collect();
        rows.get(self.index_in(View::Devices, &keys)).copied()
    }

    pub fn selected_alert<'a>(&self, s: &'a State) -> Option<&'a Stored> {
        let rows = self.alerts(s);
        let keys: Vec<String> = rows.iter().map(|a| a.seq.to_string()).collect();
        rows.get(self.index_in(View::Alerts, &keys)).copied()
    }

    fn switch(&mut self, v: View, s: &State) -> Outcome {
        self.view = v;
        self.detail = false;
        self.editing = false;
        self.filter.clear();
        self.explain(s)
    }

    fn explain(&self, s: &State) -> Outcome {
        match (self.view, self.selected_device(s)) {
            (View::Devices, Some(d)) => Outcome::Send(Request::Explain(d.id.clone())),
            _ => Outcome::Nothing,
        }
    }

    fn move_by(&mut self, delta: isize, s: &State) -> Outcome {
        let keys = self.keys(self.view, s);
        let i = self.view.index();
        let at = self
            .index_in(self.view, &keys)
            .saturating_add_signed(delta)
            .min(keys.len().saturating_sub(1));
        self.selected[i] = at;
        self.anchor[i] = keys.get(at).cloned();
        self.explain(s)
    }

    /// Applies one key press. `s` is the state the user is looking at.
    pub fn handle_key(&mut self, key: KeyEvent, s: &State) -> Outcome {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Outcome::Quit;
        }
        if self.editing {
            match key.code {
                KeyCode::Enter => self.editing = false,
                KeyCode::Esc => {
                    self.editing = false;
                    self.filter.clear();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            }
            return Outcome::Nothing;
        }
        if self.help {
            // Any key closes help; q still quits.
            self.help = false;
            return if key.code == KeyCode::Char('q') {
                Outcome::Quit
            } else {
                Outcome::Nothing
            };
        }
        match key.code {
            KeyCode::Char('q') => return Outcome::Quit,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Tab => {
                let next = View::ALL[(self.view.index() + 1) % View::ALL.len()];
                return self.switch(next, s);
            }
            KeyCode::BackTab => {
                let prev = View::ALL[(self.view.index() + View::ALL.len() - 1) % View::ALL.len()];
                return self.switch(prev, s);
            }
            KeyCode::Char(c @ '1'..='6') => {
                return self.switch(View::ALL[c as usize - '1' as usize], s);
            }
            KeyCode::Char('/') if self.view.filters() => {
                self.editing = true;
                self.detail = false;
            }
            KeyCode::Esc => {
                if self.detail {
                    self.detail = false;
                } else {
                    self.filter.clear();
                }
            }
            KeyCode::Down | KeyCode::Char('j') => return self.move_by(1, s),
            KeyCode::Up | KeyCode::Char('k') => return self.move_by(-1, s),
            KeyCode::PageDown => return self.move_by(10, s),
            KeyCode::PageUp => return self.move_by(-10, s),
            KeyCode::Home | KeyCode::Char('g') => return self.move_by(isize::MIN / 2, s),
            KeyCode::End | KeyCode::Char('G') => return self.move_by(isize::MAX / 2, s),
            _ => return self.view_key(key, s),
        }
        Outcome::Nothing
    }

    fn view_key(&mut self, key: KeyEvent, s: &State) -> Outcome {
        match (self.view, key.code) {
            (View::Devices, KeyCode::Char('s')) => {
                self.sort = self.sort.next();
                self.descending = matches!(self.sort, Sort::Score | Sort::Criticality);
                self.explain(s)
            }
            (View::Devices, KeyCode::Char('r')) => {
                self.descending = !self.descending;
                self.explain(s)
            }
            (View::Alerts, KeyCode::Enter) => {
                self.detail = self.selected_alert(s).is_some();
                Outcome::Nothing
            }
            (View::Alerts, KeyCode::Char('u')) => {
                self.unacknowledged_only = !self.unacknowledged_only;
                Outcome::Nothing
            }
            (View::Alerts, KeyCode::Char('a')) => match self.selected_alert(s) {
                Some(a) if a.acknowledged.is_none() => Outcome::Send(Request::Acknowledge(a.seq)),
                _ => Outcome::Nothing,
            },
            (View::Response, KeyCode::Char(c @ ('y' | 'n' | 'x'))) => {
                match (self.response_items(s).get(self.selection(s)), c) {
                    (Some(ResponseItem::Pending(id)), 'y') => {
                        Outcome::Send(Request::Approve(id.clone()))
                    }
                    (Some(ResponseItem::Pending(id)), 'n') => {
                        Outcome::Send(Request::Deny(id.clone()))
                    }
                    (Some(ResponseItem::Active(addr)), 'x') => {
                        Outcome::Send(Request::Unblock(*addr))
                    }
                    _ => Outcome::Nothing,
                }
            }
            _ => Outcome::Nothing,
        }
    }
}
