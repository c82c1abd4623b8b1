//! Event filters: which events a rule wants, declared so the host can drop
//! the others before they cross into the sandbox.

use crate::Event;

macro_rules! define_field {
    ($($name:ident $variant:ident $ecs:literal $doc:literal;)*) => {
        /// A normalized string field of an [`Event`], in the order of the
        /// contract's `string-field` enum.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Field {
            $(#[doc = $doc] $variant,)*
        }

        impl Field {
            /// Every field, in contract order.
            pub const ALL: [Field; [$(Field::$variant),*].len()] = [$(Field::$variant),*];

            /// The field's value in `event`.
            pub fn of<'a>(self, event: &Event<'a>) -> Option<&'a str> {
                match self {
                    $(Field::$variant => event.$name,)*
                }
            }

            /// The field's ECS name (`user.name`).
            pub fn ecs_name(self) -> &'static str {
                match self {
                    $(Field::$variant => $ecs,)*
                }
            }
        }
    };
}
crate::for_each_string_field!(define_field);

/// The field a filter tests.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A normalized field.
    Field(Field),
    /// A path into the raw CloudTrail record (declared by the filter).
    Path(String),
}

/// How a filter compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Comparison {
    /// The whole value equals a listed one.
    Equals,
    /// The value starts with a listed one.
    Prefix,
}

/// An event passes when the target field is present and matches one of
/// `any_of` (equal, or starting with it for [`Comparison::Prefix`];
/// ignoring case if `ignore_case`).
///
/// A rule returns its filters from [`Rule::filters`](crate::Rule::filters);
/// an event reaches the rule only if it passes all of them. The host checks
/// them natively, before encoding a batch, so a rule that looks at few
/// events does not pay for receiving the rest. A record field is compared
/// by [`Value::comparable`](crate::Value::comparable): strings and numbers
/// by their text, booleans as `true` / `false`; other values never pass.
/// Ignoring case lower-cases both sides (Unicode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFilter {
    /// The field tested.
    pub target: Target,
    /// How values are compared.
    pub comparison: Comparison,
    /// Whether case is ignored.
    pub ignore_case: bool,
    /// The values that pass.
    pub any_of: Vec<String>,
}

impl EventFilter {
    /// A filter passing events whose normalized `field` equals one of
    /// `values`.
    pub fn new<S: Into<String>>(field: Field, values: impl IntoIterator<Item = S>) -> Self {
        EventFilter {
            target: Target::Field(field),
            comparison: Comparison::Equals,
            ignore_case: false,
            any_of: values.into_iter().map(Into::into).collect(),
        }
    }

    /// A filter passing events whose raw record field at `path` equals one
    /// of `values` (the path is declared with it).
    pub fn path<S: Into<String>>(path: &str, values: impl IntoIterator<Item = S>) -> Self {
        EventFilter {
            target: Target::Path(path.to_owned()),
            ..EventFilter::new(Field::EventId, values)
        }
    }

    /// The same filter, ignoring case.
    pub fn ignore_case(mut self) -> Self {
        self.ignore_case = true;
        self
    }

    /// The same filter, passing values that start with a listed one.
    pub fn prefix(mut self) -> Self {
        self.comparison = Comparison::Prefix;
        self
    }

    /// Whether `value` (the target's comparable text, `None` when absent or
    /// not comparable) passes. The host checks the same with an automaton;
    /// this is the plain definition.
    pub fn accepts_value(&self, value: Option<&str>) -> bool {
        let Some(value) = value else {
            return false;
        };
        let lower;
        let value = if self.ignore_case {
            lower = value.to_lowercase();
            lower.as_str()
        } else {
            value
        };
        self.any_of.iter().any(|listed| {
            let listed_lower;
            let listed = if self.ignore_case {
                listed_lower = listed.to_lowercase();
                listed_lower.as_str()
            } else {
                listed
            };
            match self.comparison {
                Comparison::Equals => value == listed,
                Comparison::Prefix => value.starts_with(listed),
            }
        })
    }

    /// Whether `event` passes.
    pub fn accepts(&self, event: &Event<'_>) -> bool {
        let value = match &self.target {
            Target::Field(field) => field.of(event),
            Target::Path(path) => event.get(path).and_then(|v| v.comparable()),
        };
        self.accepts_value(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RecordFields, Value};

    #[test]
    fn an_event_passes_when_the_field_is_one_of_the_values() {
        let root = EventFilter::new(Field::IdentityType, ["Root"]);
        let mut event = Event::at(0);
        assert!(!root.accepts(&event), "an absent field never passes");
        event.identity_type = Some("IAMUser");
        assert!(!root.accepts(&event));
        event.identity_type = Some("Root");
        assert!(root.accepts(&event));
        let none = EventFilter::new(Field::IdentityType, Vec::<String>::new());
        assert!(!none.accepts(&event), "no values: nothing passes");
    }

    #[test]
    fn case_and_prefix() {
        let f = EventFilter::new(Field::EventAction, ["PutBucket"]).prefix();
        assert!(f.accepts_value(Some("PutBucketAcl")));
        assert!(!f.accepts_value(Some("putbucketacl")));
        assert!(f.clone().ignore_case().accepts_value(Some("putbucketacl")));
        let eq = EventFilter::new(Field::EventAction, ["ConsoleLogin"]).ignore_case();
        assert!(eq.accepts_value(Some("CONSOLELOGIN")));
        assert!(!eq.accepts_value(Some("ConsoleLogins")));
        // Unicode lower-casing, not only ASCII.
        let u = EventFilter::new(Field::UserName, ["ÉVE"]).ignore_case();
        assert!(u.accepts_value(Some("éve")));
    }

    #[test]
    fn record_fields_are_compared_by_their_text() {
        let paths = ["requestParameters.enable".to_owned(), "n".to_owned()];
        let values = [Some(Value::Bool(false)), Some(Value::Number("3"))];
        let event = Event {
            record: RecordFields::new(&paths, &values),
            ..Event::at(0)
        };
        assert!(EventFilter::path("requestParameters.enable", ["false"]).accepts(&event));
        assert!(!EventFilter::path("requestParameters.enable", ["true"]).accepts(&event));
        assert!(EventFilter::path("n", ["3"]).accepts(&event));
        assert!(!EventFilter::path("missing", ["3"]).accepts(&event));
    }

    #[test]
    fn every_field_reads_its_own_value() {
        let names: Vec<String> = (0..Field::ALL.len()).map(|i| i.to_string()).collect();
        let event = Event::from_fields(
            0,
            |f| Some(names[Field::ALL.iter().position(|x| *x == f).unwrap_or(0)].as_str()),
            None,
            crate::Outcome::Unknown,
            RecordFields::default(),
        );
        for (i, field) in Field::ALL.iter().enumerate() {
            assert_eq!(field.of(&event), Some(i.to_string().as_str()), "{field:?}");
        }
        assert_eq!(Field::ALL.len(), 14);
        assert_eq!(Field::UserName.ecs_name(), "user.name");
    }
}
