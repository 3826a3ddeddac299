//! Event kinds as a dense index, so the engine dispatches each event only to the detectors and
//! rules that asked for its kind, without comparing strings on the hot path. The type is the
//! model's: rules name kinds by [`Kind::name`], the event JSON's `kind` tag.

pub use heir_model::Kind;
