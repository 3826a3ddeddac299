//! Views of parts that may not be built (or not running) yet.

use serde::{Deserialize, Serialize};

/// Either the data, or a plain statement of why there is none.
///
/// A view of a subsystem that is not part of this build says so instead of showing an empty
/// (and so falsely reassuring) list: no peers because the mesh is not built is not the same as
/// no peers because nobody is online.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability<T> {
    Available(T),
    /// `what` is a sentence for the operator, e.g. "the threat-sharing mesh is not part of
    /// this build".
    NotBuilt {
        what: String,
    },
}

impl<T> Availability<T> {
    pub fn not_built(what: impl Into<String>) -> Self {
        Availability::NotBuilt { what: what.into() }
    }

    pub fn as_ref(&self) -> Availability<&T> {
        match self {
            Availability::Available(t) => Availability::Available(t),
            Availability::NotBuilt { what } => Availability::NotBuilt { what: what.clone() },
        }
    }

    pub fn available(&self) -> Option<&T> {
        match self {
            Availability::Available(t) => Some(t),
            Availability::NotBuilt { .. } => None,
        }
    }
}
