//! What a rule component is, without running any events through it.

use std::path::{Path, PathBuf};

use wasmtime::component::types::ComponentItem;

use trailguard_rule_sdk::EventFilter;

use crate::{HostError, RuleInfo, Runtime};

/// A component's identity card, as `trailguard rules inspect` prints it.
#[derive(Clone, Debug)]
pub struct ComponentReport {
    /// The file.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
    /// Top-level imports (a loadable rule has none).
    pub imports: Vec<String>,
    /// Top-level exports, each with the functions of an exported instance.
    pub exports: Vec<(String, Vec<String>)>,
    /// The contract version it was built against, from its export name.
    pub contract: Option<String>,
    /// The rule's metadata, when the component loads.
    pub info: Option<RuleInfo>,
    /// The raw-record paths it reads with its default configuration.
    pub fields: Vec<String>,
    /// The events it wants with its default configuration (empty: all).
    pub filters: Vec<EventFilter>,
    /// Why the host refuses it, if it does.
    pub refused: Option<String>,
}

impl Runtime {
    /// Inspects a component: hash, imports, exports, contract version and,
    /// when it loads, its metadata. Only an unreadable or uncompilable file
    /// is an error; a refused component is reported, with the reason.
    pub fn inspect(&self, path: &Path) -> Result<ComponentReport, HostError> {
        let file = self.read_rule(path)?;
        let mut report = ComponentReport {
            path: path.to_owned(),
            size: file.bytes().len() as u64,
            sha256: file.sha256().to_owned(),
            imports: Vec::new(),
            exports: Vec::new(),
            contract: None,
            info: None,
            fields: Vec::new(),
            filters: Vec::new(),
            refused: None,
        };
        let component = self.compile(&file)?;
        let engine = self.engine();
        let ty = component.component_type();
        report.imports = ty
            .imports(engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        for (name, item) in ty.exports(engine) {
            let functions = match item.ty {
                ComponentItem::ComponentInstance(instance) => instance
                    .exports(engine)
                    .map(|(f, _)| f.to_owned())
                    .collect(),
                _ => Vec::new(),
            };
            if let Some(version) = name.strip_prefix("trailguard:detector/rule@") {
                report.contract = Some(version.to_owned());
            }
            report.exports.push((name.to_owned(), functions));
        }
        match self
            .checked(&file, component, None)
            .and_then(|rule| self.instantiate(&rule, |_| String::new()))
        {
            Ok(rule) => {
                report.info = Some(crate::Detector::info(&rule).clone());
                report.fields = crate::Detector::record_paths(&rule).to_vec();
                report.filters = rule.filters();
            }
            Err(HostError::Refused { reason, .. }) => report.refused = Some(reason),
            Err(e) => report.refused = Some(e.to_string()),
        }
        Ok(report)
    }
}
