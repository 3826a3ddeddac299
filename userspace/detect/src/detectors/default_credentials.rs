//! Logins with factory-default account names over cleartext protocols. Only the user name is
//! looked at: the packet sensor never hands passwords to userspace.

use heir_model::event::{LoginOutcome, Observation};
use heir_model::{Alert, Category, Event, EventKind, Severity};
use serde::{Deserialize, Serialize};

use super::strings;
use crate::{Detector, Kind, Spec};

const SPEC: Spec = Spec {
    rule: "auth.default_credentials",
    category: Category::DefaultCredentials,
    owasp_iot: "I1",
    enisa: "Nefarious activity/abuse: abuse of authentication (default credentials)",
    attack: "T1078.001",
};

/// Default-credential settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub enabled: bool,
    /// Account names devices ship with (compared case-insensitively).
    pub users: Vec<String>,
    /// Also alert (at medium severity) on attempts whose outcome is unknown or failed.
    pub alert_on_attempt: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            users: strings(&[
                "admin",
                "administrator",
                "root",
                "user",
                "guest",
                "service",
                "support",
                "tech",
                "operator",
                "default",
                "test",
                "manager",
                "sysadmin",
                "supervisor",
                "maint",
                "field",
                "biomed",
                "anonymous",
                "ftp",
                "pi",
                "ubnt",
                "cisco",
                "installer",
                "factory",
                "siemens",
                "philips",
                "ge",
                "mindray",
            ]),
            alert_on_attempt: false,
        }
    }
}

pub struct DefaultCredentials {
    cfg: Config,
}

impl DefaultCredentials {
    pub fn new(mut cfg: Config) -> Self {
        for u in &mut cfg.users {
            *u = u.to_ascii_lowercase();
        }
        Self { cfg }
    }
}

impl Detector for DefaultCredentials {
    fn name(&self) -> &'static str {
        "default_credentials"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Protocol]
    }

    fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        let EventKind::Protocol {
            src,
            dst,
            dst_port,
            observation,
            ..
        } = &ev.kind
        else {
            return;
        };
        let (service, user, outcome) = match observation {
            Observation::Telnet {
                user: Some(u),
                outcome,
            } => ("telnet", u, *outcome),
            Observation::Ftp {
                user: Some(u),
                outcome,
                ..
            } => ("ftp", u, *outcome),
            Observation::Mqtt {
                user: Some(u),
                outcome,
                ..
            } => ("mqtt", u, *outcome),
            Observation::Http {
                basic_auth_user: Some(u),
                status,
                ..
            } => (
                "http",
                u,
                status.map(|s| {
                    if (200..400).contains(&s) {
                        LoginOutcome::Success
                    } else {
                        LoginOutcome::Failure
                    }
                }),
            ),
            _ => return,
        };
        if !self.cfg.users.iter().any(|d| d.eq_ignore_ascii_case(user)) {
            return;
        }
        let (severity, confidence, verb) = match outcome {
            Some(LoginOutcome::Success) => (Severity::High, 0.9, "succeeded"),
            _ if self.cfg.alert_on_attempt => (Severity::Medium, 0.6, "attempted"),
            _ => return,
        };
        let mut a = SPEC.alert(
            ev.ts,
            format!("Default account `{user}` login {verb} on {service} at {dst}"),
            severity,
            confidence,
        );
        a.device = Some(dst.to_string());
        a.src_ip = Some(*src);
        a.dst_ip = Some(*dst);
        a.dst_port = Some(*dst_port);
        a.evidence.push(format!("{service} login as factory-default account `{user}` from {src} {verb}, credentials in cleartext"));
        out.push(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::fixtures::*;

    #[test]
    fn telnet_admin_login_fires_named_user_does_not() {
        let mut d = DefaultCredentials::new(Config::default());
        let attack = proto(
            0,
            "10.9.0.66",
            "10.9.0.20",
            23,
            Observation::Telnet {
                user: Some("Admin".into()),
                outcome: Some(LoginOutcome::Success),
            },
        );
        let basic = proto(
            1,
            "10.9.0.66",
            "10.9.0.21",
            80,
            Observation::Http {
                method: "GET".into(),
                admin_path: true,
                basic_auth_user: Some("admin".into()),
                basic_auth_cleartext: true,
                status: Some(200),
                host: None,
                url_digest: None,
            },
        );
        let alerts = run(&mut d, &[attack, basic]);
        assert_eq!(alerts.len(), 2);
        assert_complete(&alerts);
        let benign = [
            proto(
                2,
                "10.9.0.2",
                "10.9.0.20",
                23,
                Observation::Telnet {
                    user: Some("jdoe".into()),
                    outcome: Some(LoginOutcome::Success),
                },
            ),
            proto(
                3,
                "10.9.0.66",
                "10.9.0.20",
                21,
                Observation::Ftp {
                    user: Some("admin".into()),
                    cleartext_credentials: true,
                    outcome: Some(LoginOutcome::Failure),
                },
            ),
        ];
        assert!(run(&mut d, &benign).is_empty());
    }
}
