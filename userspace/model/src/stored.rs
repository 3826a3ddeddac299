//! What the store keeps beside events and the API serves as is: alerts with their store
//! sequence number and acknowledgement, and the responder's audit log. One definition for the
//! store, the agent, the API and its clients, so none of them converts between copies.

use serde::{Deserialize, Serialize};

use crate::{Alert, Timestamp};

/// An alert as stored. `seq` is the store's key (increasing with arrival); `alert.id` is the
/// content id that de-duplicates the same incident.
///
/// The wire name of the acknowledgement is `acknowledged`; stores written before this type was
/// shared named it `ack`, which still reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAlert {
    pub seq: u64,
    #[serde(default, alias = "ack", skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<Ack>,
    pub alert: Alert,
}

/// An acknowledgement: when someone looked at an alert, and who, where known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub at: Timestamp,
    /// Who acknowledged (`api`, an operator's name); empty when not recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub by: String,
}

impl Ack {
    /// An acknowledgement at `at` by nobody in particular.
    pub fn at(at: Timestamp) -> Ack {
        Ack {
            at,
            by: String::new(),
        }
    }
}

/// One action of the responder (or an operator through it), for the audit log: every block,
/// unblock, proposal, approval, denial and refusal, what was done to which address, why, by
/// whom, and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: Timestamp,
    /// `block`, `unblock`, `propose`, `approve`, `deny`, `refuse`.
    pub action: String,
    pub target: String,
    pub reason: String,
    /// `policy`, `operator`, `mesh`.
    pub actor: String,
    /// `done`, or why not.
    pub outcome: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Category, Severity};

    fn alert() -> Alert {
        Alert::new(
            Timestamp::from_secs(1),
            "test",
            "a test",
            Category::PortScan,
            Severity::Low,
            0.5,
        )
    }

    #[test]
    fn acknowledgement_reads_under_both_names_and_writes_the_wire_name() {
        let s = StoredAlert {
            seq: 3,
            acknowledged: Some(Ack {
                at: Timestamp::from_secs(5),
                by: "api".into(),
            }),
            alert: alert(),
        };
        let v = serde_json::to_value(&s).unwrap();
        assert!(v.get("ack").is_none());
        assert_eq!(v["acknowledged"]["by"], "api");
        let mut old = v.clone();
        let ack = old.as_object_mut().unwrap().remove("acknowledged").unwrap();
        old["ack"] = ack;
        assert_eq!(serde_json::from_value::<StoredAlert>(old).unwrap(), s);
        assert_eq!(serde_json::from_value::<StoredAlert>(v).unwrap(), s);

        let bare = Ack::at(Timestamp::from_secs(5));
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            serde_json::json!({"at": serde_json::to_value(Timestamp::from_secs(5)).unwrap()})
        );
    }
}
