//! Source-AS enrichment.
//!
//! [`AsnDb`] answers "which autonomous system announces this address?" from
//! an MMDB file in the GeoLite2-ASN layout (`autonomous_system_number`,
//! `autonomous_system_organization`), which is what MaxMind ships and what
//! [`import`] builds from the ip-location-db CSVs (DB-IP ASN Lite +
//! RouteViews). This crate only looks addresses up; deciding what is an
//! address is the normalizer's job.

mod import;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub use import::{ImportStats, import_csv};

/// An autonomous system, as found in the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsInfo {
    /// `source.as.number`.
    pub number: u32,
    /// `source.as.organization.name`; `None` when the database has no name.
    pub organization: Option<String>,
}

/// Errors of this crate; each names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum AsnError {
    /// The MMDB file cannot be opened or is not a valid MaxMind DB.
    #[error("cannot open ASN database {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: maxminddb::MaxMindDbError,
    },
    /// The database is readable but not an ASN database.
    #[error(
        "{path} is a {database_type} database, not an ASN database; pass a GeoLite2-ASN file or one built with `trailguard asn import`"
    )]
    NotAnAsnDatabase {
        /// The file.
        path: PathBuf,
        /// Its declared type.
        database_type: String,
    },
    /// A record in the database does not decode.
    #[error("corrupt record in ASN database for {ip}: {source}")]
    Corrupt {
        /// The address looked up.
        ip: IpAddr,
        /// Why.
        source: maxminddb::MaxMindDbError,
    },
    /// A CSV input cannot be read or has a bad row.
    #[error("{path}, line {line}: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0 when the file cannot be opened).
        line: u64,
        /// What is wrong and what to do.
        message: String,
    },
    /// The output cannot be written.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

#[derive(serde::Deserialize)]
struct AsnRecord<'a> {
    autonomous_system_number: Option<u32>,
    #[serde(borrow)]
    autonomous_system_organization: Option<&'a str>,
}

/// An opened ASN database.
pub struct AsnDb {
    reader: maxminddb::Reader<Vec<u8>>,
    path: PathBuf,
}

impl std::fmt::Debug for AsnDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsnDb").field("path", &self.path).finish()
    }
}

impl AsnDb {
    /// Opens an MMDB file and checks that it is an ASN database.
    pub fn open(path: &Path) -> Result<AsnDb, AsnError> {
        let reader = maxminddb::Reader::open_readfile(path).map_err(|source| AsnError::Open {
            path: path.to_owned(),
            source,
        })?;
        let database_type = reader.metadata().database_type.clone();
        if !database_type.to_ascii_lowercase().contains("asn") {
            return Err(AsnError::NotAnAsnDatabase {
                path: path.to_owned(),
                database_type,
            });
        }
        Ok(AsnDb {
            reader,
            path: path.to_owned(),
        })
    }

    /// The file this database was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database's declared type and build time (seconds since the epoch).
    pub fn describe(&self) -> (String, u64) {
        let m = self.reader.metadata();
        (m.database_type.clone(), m.build_epoch)
    }

    /// Looks an address up; `Ok(None)` when no network in the database covers it.
    pub fn lookup(&self, ip: IpAddr) -> Result<Option<AsInfo>, AsnError> {
        let corrupt = |source| AsnError::Corrupt { ip, source };
        let result = self.reader.lookup(ip).map_err(corrupt)?;
        let Some(record) = result.decode::<AsnRecord<'_>>().map_err(corrupt)? else {
            return Ok(None);
        };
        Ok(record.autonomous_system_number.map(|number| AsInfo {
            number,
            organization: record
                .autonomous_system_organization
                .filter(|o| !o.is_empty())
                .map(str::to_owned),
        }))
    }
}
