//! Building an MMDB from ip-location-db's `start,end,asn,organization` CSVs.

use std::net::IpAddr;
use std::path::Path;
use std::time::SystemTime;

use mmdb_writer::{Value, Writer};

use crate::AsnError;

/// What an import read and wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// IPv4 ranges inserted.
    pub ipv4_ranges: u64,
    /// IPv6 ranges inserted.
    pub ipv6_ranges: u64,
    /// IPv6 ranges skipped because they lie in a network the database
    /// aliases to IPv4 space (`::ffff:0:0/96`, Teredo `2001::/32`, 6to4
    /// `2002::/16`): look-ups there answer with the embedded IPv4 address's AS.
    pub aliased_skipped: u64,
    /// Size of the written database in bytes.
    pub bytes: u64,
}

/// The `database_type` written into the metadata: the GeoLite2-ASN layout.
pub const DATABASE_TYPE: &str = "trailguard-ASN";

/// Builds an MMDB file at `out` from IPv4 and/or IPv6 CSV files with rows
/// `start,end,asn,organization` (inclusive ranges, as ip-location-db ships
/// them). `build_epoch` fixes the metadata time for reproducible output.
pub fn import_csv(
    ipv4: Option<&Path>,
    ipv6: Option<&Path>,
    out: &Path,
    build_epoch: Option<SystemTime>,
) -> Result<ImportStats, AsnError> {
    let mut writer = Writer::builder(DATABASE_TYPE)
        .description(&[(
            "en",
            "AS numbers and organizations; data from DB-IP.com (IP to ASN Lite, CC BY 4.0) and routeviews.org (CC BY 4.0) via ip-location-db",
        )])
        .maybe_build_epoch(build_epoch)
        .build();
    let mut stats = ImportStats::default();
    if let Some(path) = ipv4 {
        stats.ipv4_ranges = insert_rows(&mut writer, path, false, &mut stats.aliased_skipped)?;
    }
    if let Some(path) = ipv6 {
        stats.ipv6_ranges = insert_rows(&mut writer, path, true, &mut stats.aliased_skipped)?;
    }
    let bytes = writer.to_bytes().map_err(|e| AsnError::Write {
        path: out.to_owned(),
        message: e.to_string(),
    })?;
    stats.bytes = bytes.len() as u64;
    let tmp = out.with_extension("mmdb.tmp");
    std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, out))
        .map_err(|e| AsnError::Write {
            path: out.to_owned(),
            message: e.to_string(),
        })?;
    Ok(stats)
}

fn insert_rows(
    writer: &mut Writer,
    path: &Path,
    v6: bool,
    aliased: &mut u64,
) -> Result<u64, AsnError> {
    let err = |line: u64, message: String| AsnError::Csv {
        path: path.to_owned(),
        line,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .map_err(|e| err(0, e.to_string()))?;
    let mut rows = 0;
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(err(e.position().map_or(0, |p| p.line()), e.to_string())),
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.len() < 3 {
            return Err(err(
                line,
                format!(
                    "expected start,end,asn[,organization], got {} field(s)",
                    record.len()
                ),
            ));
        }
        let addr = |i: usize| -> Result<IpAddr, AsnError> {
            let text = &record[i];
            let ip: IpAddr = text
                .parse()
                .map_err(|_| err(line, format!("`{text}` is not an IP address (numeric -num.csv files are not supported; use asn-ipv4.csv / asn-ipv6.csv)")))?;
            if ip.is_ipv6() != v6 {
                return Err(err(
                    line,
                    format!(
                        "`{text}` is not an IPv{} address; check --ipv4 / --ipv6",
                        if v6 { 6 } else { 4 }
                    ),
                ));
            }
            Ok(ip)
        };
        let (start, end) = (addr(0)?, addr(1)?);
        let number: u32 = record[2]
            .parse()
            .map_err(|_| err(line, format!("`{}` is not an AS number", &record[2])))?;
        let organization = record.get(3).unwrap_or("");
        let mut fields = vec![("autonomous_system_number", Value::from(number))];
        if !organization.is_empty() {
            fields.push(("autonomous_system_organization", Value::from(organization)));
        }
        match writer.insert_range(start, end, &Value::map(fields)) {
            Ok(()) => rows += 1,
            Err(mmdb_writer::Error::AliasedNetwork(_)) => *aliased += 1,
            Err(e) => return Err(err(line, e.to_string())),
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AsInfo, AsnDb};

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn imported_database_answers_lookups() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v4 = write(
            dir.path(),
            "v4.csv",
            "3.0.0.0,3.0.255.255,16509,\"Amazon.com, Inc.\"\n24.0.0.0,24.0.0.255,7922,\"Comcast Cable Communications, LLC\"\n",
        );
        let v6 = write(
            dir.path(),
            "v6.csv",
            "2001::,2001::ffff:ffff:ffff:ffff:ffff:ffff,6939,Hurricane Electric LLC\n2600:1f00::,2600:1fff:ffff:ffff:ffff:ffff:ffff:ffff,16509,\"Amazon.com, Inc.\"\n",
        );
        let out = dir.path().join("asn.mmdb");
        let stats =
            import_csv(Some(&v4), Some(&v6), &out, Some(SystemTime::UNIX_EPOCH)).expect("import");
        assert_eq!(
            (stats.ipv4_ranges, stats.ipv6_ranges, stats.aliased_skipped),
            (2, 1, 1)
        );
        let db = AsnDb::open(&out).expect("open");
        let amazon = Some(AsInfo {
            number: 16509,
            organization: Some("Amazon.com, Inc.".into()),
        });
        assert_eq!(
            db.lookup("3.0.12.1".parse().expect("ip")).expect("lookup"),
            amazon
        );
        assert_eq!(
            db.lookup("2600:1f18::1".parse().expect("ip"))
                .expect("lookup"),
            amazon
        );
        assert_eq!(
            db.lookup("24.0.0.255".parse().expect("ip"))
                .expect("lookup")
                .map(|a| a.number),
            Some(7922)
        );
        assert_eq!(
            db.lookup("24.0.1.0".parse().expect("ip")).expect("lookup"),
            None
        );
        assert_eq!(
            db.lookup("::ffff:3.0.0.1".parse().expect("ip"))
                .expect("lookup"),
            amazon,
            "IPv4-mapped addresses resolve to the IPv4 network"
        );
    }

    #[test]
    fn bad_rows_name_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v4 = write(
            dir.path(),
            "v4.csv",
            "1.0.0.0,1.0.0.255,13335,x\n16777216,16777471,13335,x\n",
        );
        let err =
            import_csv(Some(&v4), None, &dir.path().join("o.mmdb"), None).expect_err("numeric");
        let text = err.to_string();
        assert!(
            text.contains("v4.csv, line 2") && text.contains("16777216"),
            "{text}"
        );

        let v6_in_v4 = write(dir.path(), "mixed.csv", "2001::,2001::ff,6939,HE\n");
        let err = import_csv(Some(&v6_in_v4), None, &dir.path().join("o.mmdb"), None)
            .expect_err("family");
        assert!(err.to_string().contains("not an IPv4 address"), "{err}");
    }
}
