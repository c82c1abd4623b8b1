//! Rule `aws-root-activity`: AWS root account activity.
//!
//! The root user can do anything in an account and should be locked away;
//! every call it makes, from any network, is worth a look. This rule was
//! written from the `trailguard new-rule` template as the worked example of
//! docs/writing-a-rule.md: a stateless rule is its metadata, its
//! configuration, the events it wants and a check of one event.

use serde::{Deserialize, Serialize};
use trailguard_rule_sdk::{
    Alert, AlertBuilder, Event, EventFilter, Field, Outcome, Rule, RuleInfo, Severity, config,
    export_rule, serde_json,
};

/// The rule's id, as it appears in alerts and configuration files.
pub const RULE_ID: &str = "aws-root-activity";

/// The rule's configuration (`[rules.aws-root-activity]` in trailguard.toml).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `event.action` values that never alert (e.g. a sanctioned break-glass
    /// routine).
    pub ignore_actions: Vec<String>,
    /// Alert on failed root calls too (a failed root login is itself a
    /// signal, but noisy).
    pub include_failed: bool,
}

/// The rule.
pub struct RootActivity {
    config: Config,
}

impl Rule for RootActivity {
    fn info() -> RuleInfo {
        RuleInfo {
            id: RULE_ID.into(),
            name: "AWS root account activity".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            severity: Severity::High,
            risk_score: 73,
            mitre_techniques: vec!["T1078.004".into()],
            description: "The account's root user made an API call. Root should be locked away \
                behind MFA and used only for the few tasks that need it; any other use, from any \
                network, suggests stolen root credentials."
                .into(),
            default_config: serde_json::to_string(&Config::default()).unwrap_or_default(),
            tags: Vec::new(),
            references: Vec::new(),
            author: String::new(),
        }
    }

    fn create(text: &str) -> Result<Self, String> {
        let config = config::parse(text, Config::default())?;
        Ok(RootActivity { config })
    }

    fn filters(&self) -> Vec<EventFilter> {
        // Only root's calls need to cross into the rule.
        vec![EventFilter::new(Field::IdentityType, ["Root"])]
    }

    fn check(&self, event: &Event<'_>) -> Option<Alert> {
        let counted = event.outcome == Outcome::Success || self.config.include_failed;
        let ignored = event
            .event_action
            .is_some_and(|a| self.config.ignore_actions.iter().any(|x| x == a));
        (event.identity_type == Some("Root") && counted && !ignored)
            .then(|| AlertBuilder::from_event(event).build())
    }
}

export_rule!(RootActivity);

#[cfg(test)]
mod tests {
    use trailguard_rule_sdk::testing::{Harness, TestEvent};

    use super::*;

    fn root(t: i64, action: &str) -> TestEvent {
        TestEvent::new(t, "", action)
            .identity_type(Some("Root"))
            .from_network("73.162.41.17", 7922, "Comcast Cable Communications, LLC")
    }

    #[test]
    fn root_calls_alert_from_any_network() {
        let mut unnamed = root(1_000, "ListBuckets");
        unnamed.user_name = None;
        let events = [
            unnamed,
            TestEvent::new(2_000, "admin", "ListBuckets").identity_type(Some("IAMUser")),
            root(3_000, "ConsoleLogin").outcome(Outcome::Failure),
            root(4_000, "CreateAccessKey"),
        ];
        let alerts = Harness::<RootActivity>::new("")
            .expect("defaults")
            .run(&events);
        let actions: Vec<_> = alerts
            .iter()
            .map(|a| a.document["event.action"].clone())
            .collect();
        assert_eq!(actions, ["ListBuckets", "CreateAccessKey"]);
        assert_eq!(
            alerts[0].document["aws.cloudtrail.user_identity.type"],
            "Root"
        );
        assert_eq!(
            alerts[0].document["source.as.organization.name"],
            "Comcast Cable Communications, LLC"
        );

        let all = Harness::<RootActivity>::new(
            r#"{"include_failed":true,"ignore_actions":["ListBuckets"]}"#,
        )
        .expect("valid")
        .run(&events);
        let actions: Vec<_> = all
            .iter()
            .map(|a| a.document["event.action"].clone())
            .collect();
        assert_eq!(actions, ["ConsoleLogin", "CreateAccessKey"]);
        assert_eq!(all[0].document["event.outcome"], "failure");
    }

    #[test]
    fn configuration_is_checked() {
        assert!(
            Harness::<RootActivity>::new(r#"{"ignore":[]}"#).is_err(),
            "unknown key"
        );
    }
}
