//! The datatracker: the address of a statement's record there (from its "New Liaison
//! Statement" notice, or as a person writes it in a `Recorded:` command), and the
//! relationships data against the datatracker's own record of it: its SDO groups (`/api/v1/group/group/?type=sdo`) and liaison-manager roles
//! (`/api/v1/group/role/?name=liaiman`), as saved JSON. `liaisond relationships diff` prints
//! what differs; nothing is changed.
//!
//! The API is tastypie's (the datatracker's `ietf/group/resources.py`): a list is
//! `{"meta": {...}, "objects": [...]}`; a group object has `acronym`, `name`, `resource_uri`
//! and its `state` and `type` as URIs (`/api/v1/name/groupstatename/active/`); a role object
//! has `group`, `name`, `person` and `email` as URIs (`/api/v1/person/email/a@b.org/`).

use std::collections::{BTreeMap, BTreeSet};

use liaisond_model::{DatatrackerRecord, normalize_address};
use serde::Deserialize;

use crate::relationships::{Liaison, Relationships};

/// The host whose liaison pages count as records.
const HOST: &str = "datatracker.ietf.org";

/// A statement's page in the datatracker, as written: `https://datatracker.ietf.org/liaison/2099/`
/// (the trailing `/` optional, any case of scheme and host, trailing punctuation of the
/// sentence around it ignored). Only that host and that path: a record is where people are
/// sent to read the statement, so no other URL is taken for one.
pub fn record_url(text: &str) -> Option<DatatrackerRecord> {
    let text = text.trim().trim_start_matches('<').trim_end_matches(['>', '.', ',', ')', ';']);
    let rest = text.get(..8).filter(|s| s.eq_ignore_ascii_case("https://")).map(|_| &text[8..])?;
    let rest = rest.get(..HOST.len()).filter(|h| h.eq_ignore_ascii_case(HOST)).map(|_| &rest[HOST.len()..])?;
    let digits = rest.strip_prefix("/liaison/")?.trim_end_matches('/');
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number: u32 = digits.parse().ok().filter(|n| *n > 0)?;
    Some(DatatrackerRecord { url: format!("https://{HOST}/liaison/{number}/"), number })
}

/// The record a "New Liaison Statement" notice points to: its `URL of the IETF Web page:`
/// line (the datatracker's `liaisons/messages/liaison_statement.txt`). Other URLs in the notice
/// (a referenced liaison, attachments) are not the record.
pub fn record_in_notice(body: &str) -> Option<DatatrackerRecord> {
    const LABEL: &str = "url of the ietf web page:";
    body.lines().take(40).find_map(|line| {
        let line = line.trim();
        line.get(..LABEL.len()).filter(|l| l.eq_ignore_ascii_case(LABEL)).and_then(|_| record_url(&line[LABEL.len()..]))
    })
}

/// What could not be read from a saved API answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error("not a datatracker API list (JSON with \"objects\"): {0}")]
    NotAList(String),
    #[error("only {got} of {total} objects: one page of the answer (save it with limit=0)")]
    Partial { got: usize, total: u64 },
    #[error("an object of {what} lacks {field}")]
    Missing { what: &'static str, field: &'static str },
}

/// The datatracker's record, from one or more saved API lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Export {
    /// Groups by their resource URI.
    pub groups: BTreeMap<String, ExportGroup>,
    pub roles: Vec<ExportRole>,
    /// People's names by their resource URI (`/api/v1/person/person/?id__in=...`), when saved.
    pub people: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportGroup {
    pub acronym: String,
    pub name: String,
    /// `active`, `conclude`, ... (the last part of the state's URI).
    pub state: String,
    /// `sdo`, `wg`, `area`, ...
    pub kind: String,
    /// Its parent group's resource URI (a working group's area).
    pub parent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRole {
    /// `liaiman`, `ad`, `chair`, ...
    pub name: String,
    pub group: String,
    /// Normalised (lower case).
    pub email: String,
    /// The person's resource URI.
    pub person: Option<String>,
}

#[derive(Deserialize)]
struct List {
    #[serde(default)]
    meta: Option<Meta>,
    objects: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Meta {
    total_count: Option<u64>,
}

/// The last path segment of an API URI: `/api/v1/name/rolename/liaiman/` → `liaiman`.
fn last_segment(uri: &str) -> &str {
    uri.trim_end_matches('/').rsplit('/').next().unwrap_or("")
}

/// The address in an email URI: `/api/v1/person/email/a%40b.org/` → `a@b.org`.
fn email_of(uri: &str) -> Option<String> {
    let raw = last_segment(uri);
    let decoded = raw.replace("%40", "@").replace("%2B", "+").replace("%2b", "+");
    normalize_address(&decoded)
}

impl Export {
    /// Adds the objects of one saved API list (groups or roles, told apart by their
    /// `resource_uri`).
    pub fn add_list(&mut self, json: &str) -> Result<(), ExportError> {
        let list: List = serde_json::from_str(json).map_err(|e| ExportError::NotAList(e.to_string()))?;
        // A page of a longer answer (tastypie pages by 20 unless `limit=0`) would silently lack
        // groups or roles.
        if let Some(total) = list.meta.and_then(|m| m.total_count)
            && total > list.objects.len() as u64
        {
            return Err(ExportError::Partial { got: list.objects.len(), total });
        }
        for object in list.objects {
            let text = |field: &'static str| object.get(field).and_then(|v| v.as_str()).map(str::to_string);
            let Some(uri) = text("resource_uri") else {
                return Err(ExportError::Missing { what: "the list", field: "resource_uri" });
            };
            if uri.starts_with("/api/v1/group/role/") {
                let missing = |field| ExportError::Missing { what: "a role", field };
                let name = text("name").ok_or(missing("name"))?;
                let group = text("group").ok_or(missing("group"))?;
                // A role without a usable address names nobody who could be mailed.
                let Some(email) = text("email").as_deref().and_then(email_of) else { continue };
                let person = text("person");
                self.roles.push(ExportRole { name: last_segment(&name).to_string(), group, email, person });
            } else if uri.starts_with("/api/v1/group/group/") {
                let missing = |field| ExportError::Missing { what: "a group", field };
                let acronym = text("acronym").ok_or(missing("acronym"))?.to_ascii_lowercase();
                let name = text("name").unwrap_or_default();
                let state = text("state").map(|s| last_segment(&s).to_string()).unwrap_or_default();
                let kind = text("type").map(|s| last_segment(&s).to_string()).unwrap_or_default();
                let parent = text("parent");
                self.groups.insert(uri, ExportGroup { acronym, name, state, kind, parent });
            } else if uri.starts_with("/api/v1/person/person/")
                && let Some(name) = text("name").filter(|n| !n.trim().is_empty())
            {
                self.people.insert(uri, name);
            }
        }
        Ok(())
    }
}

/// What `relationships diff` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Differences {
    /// Active SDO groups of the datatracker that the file does not know: (acronym, name).
    pub unknown_bodies: Vec<(String, String)>,
    /// Managers the datatracker has and the file lacks: (relationship acronym, address).
    pub managers_added: Vec<(String, String)>,
    /// Managers the file has and the datatracker lacks.
    pub managers_removed: Vec<(String, String)>,
    /// Organisations of the file with no manager anywhere (nor on the datatracker).
    pub without_manager: Vec<String>,
    /// A primary manager who is also an AD or a WG chair, with no backup: (relationship,
    /// address, roles).
    pub busy_without_backup: Vec<(String, String, String)>,
    /// Whether any AD or chair role was given (else the last check could not be made).
    pub checked_busy: bool,
}

/// The addresses of a relationship's managers.
fn managers_of(liaison: &Liaison) -> BTreeSet<String> {
    liaison.primary.iter().chain(liaison.backup.iter()).map(|m| m.email.clone()).collect()
}

/// Compares the relationships data with the datatracker's record.
pub fn diff(rel: &Relationships, export: &Export) -> Differences {
    let mut out = Differences::default();
    // The file's relationships by datatracker acronym: each organisation, and each group that
    // has a relationship of its own.
    let mut file: BTreeMap<String, &Liaison> = BTreeMap::new();
    let mut known: BTreeSet<String> = BTreeSet::new();
    for org in rel.organizations() {
        known.insert(org.acronym.to_ascii_lowercase());
        file.insert(org.acronym.to_ascii_lowercase(), &org.liaison);
        for g in &org.groups {
            known.insert(g.acronym.to_ascii_lowercase());
            if let Some(l) = &g.liaison {
                file.insert(g.acronym.to_ascii_lowercase(), l);
            }
        }
    }
    // The datatracker's liaison managers by group acronym.
    let mut tracker: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut busy: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for role in &export.roles {
        let Some(group) = export.groups.get(&role.group) else { continue };
        match role.name.as_str() {
            "liaiman" => {
                tracker.entry(group.acronym.clone()).or_default().insert(role.email.clone());
            }
            "ad" | "chair" => {
                out.checked_busy = true;
                let what = if role.name == "ad" {
                    format!("AD of {}", group.acronym)
                } else {
                    format!("chair of {}", group.acronym)
                };
                busy.entry(role.email.clone()).or_default().insert(what);
            }
            _ => {}
        }
    }
    for group in export.groups.values() {
        if group.kind == "sdo" && group.state == "active" && !known.contains(&group.acronym) {
            out.unknown_bodies.push((group.acronym.clone(), group.name.clone()));
        }
    }
    // Only relationships the export covers are compared: a group the export does not list
    // says nothing about its managers.
    let listed: BTreeSet<&str> = export.groups.values().map(|g| g.acronym.as_str()).collect();
    for (acronym, liaison) in &file {
        if !listed.contains(acronym.as_str()) {
            continue;
        }
        let ours = managers_of(liaison);
        let theirs = tracker.get(acronym).cloned().unwrap_or_default();
        for added in theirs.difference(&ours) {
            out.managers_added.push((acronym.clone(), added.clone()));
        }
        for removed in ours.difference(&theirs) {
            out.managers_removed.push((acronym.clone(), removed.clone()));
        }
    }
    for org in rel.organizations() {
        let has_any = org.liaison.primary.is_some()
            || org.groups.iter().any(|g| g.liaison.as_ref().is_some_and(|l| l.primary.is_some()));
        let tracker_has = tracker.contains_key(&org.acronym.to_ascii_lowercase())
            || org.groups.iter().any(|g| tracker.contains_key(&g.acronym.to_ascii_lowercase()));
        if !has_any && !tracker_has {
            out.without_manager.push(org.name.clone());
        }
    }
    for (acronym, liaison) in &file {
        if let (Some(primary), None) = (&liaison.primary, &liaison.backup)
            && let Some(roles) = busy.get(&primary.email)
        {
            let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
            out.busy_without_backup.push((acronym.clone(), primary.email.clone(), roles.join(", ")));
        }
    }
    out.unknown_bodies.sort();
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_record_is_a_datatracker_liaison_page_and_nothing_else() {
        let r = record_url("https://datatracker.ietf.org/liaison/2099/").expect("record");
        assert_eq!((r.url.as_str(), r.number), ("https://datatracker.ietf.org/liaison/2099/", 2099));
        for same in [
            "HTTPS://Datatracker.IETF.org/liaison/2099",
            "<https://datatracker.ietf.org/liaison/2099/>.",
            " https://datatracker.ietf.org/liaison/2099/) ",
        ] {
            assert_eq!(record_url(same).map(|r| r.number), Some(2099), "{same}");
        }
        for not in [
            "http://datatracker.ietf.org/liaison/2099/",
            "https://datatracker.ietf.org.evil.example/liaison/2099/",
            "https://evil.example/liaison/2099/",
            "https://datatracker.ietf.org/liaison/",
            "https://datatracker.ietf.org/liaison/0/",
            "https://datatracker.ietf.org/liaison/12a/",
            "https://datatracker.ietf.org/liaison/2099/edit/",
            "https://datatracker.ietf.org/liaison/99999999999/",
            "",
        ] {
            assert_eq!(record_url(not), None, "{not}");
        }
    }

    #[test]
    fn a_notice_points_to_its_record_not_to_the_liaison_it_references() {
        let body = "Title: Reply\nSubmission Date: 2026-11-04\n\
                    Referenced liaison: LS on clocks (https://datatracker.ietf.org/liaison/9990/)\n\
                    URL of the IETF Web page: https://datatracker.ietf.org/liaison/9999/\n";
        assert_eq!(record_in_notice(body).map(|r| r.number), Some(9999));
        assert_eq!(record_in_notice("Referenced liaison: x (https://datatracker.ietf.org/liaison/9990/)"), None);
    }

    use super::*;
    use std::path::Path;

    fn relationships() -> Relationships {
        let text = r#"
[ietf]
coordinators = ["coord@iab.org"]

[[organization]]
name = "Broadband Forum"
acronym = "broadband-forum"
managers = [{ name = "Ann", email = "ann@example.org" }]

[[organization]]
name = "MEF"
acronym = "mef"
managers = [{ name = "Bo", email = "bo@example.org" }, { name = "Cy", email = "cy@example.org", role = "backup" }]

[[organization]]
name = "Lonely SDO"
acronym = "lonely"
"#;
        Relationships::from_str_at(text, Path::new("test.toml")).expect("relationships")
    }

    fn group(id: u32, acronym: &str, name: &str, state: &str) -> String {
        format!(
            r#"{{"acronym": "{acronym}", "name": "{name}", "id": {id}, "resource_uri": "/api/v1/group/group/{id}/",
               "state": "/api/v1/name/groupstatename/{state}/", "type": "/api/v1/name/grouptypename/sdo/"}}"#
        )
    }

    fn role(id: u32, name: &str, group: u32, email: &str) -> String {
        format!(
            r#"{{"id": {id}, "resource_uri": "/api/v1/group/role/{id}/", "name": "/api/v1/name/rolename/{name}/",
               "group": "/api/v1/group/group/{group}/", "person": "/api/v1/person/person/{id}/",
               "email": "/api/v1/person/email/{email}/"}}"#
        )
    }

    fn list(objects: &[String]) -> String {
        format!(
            r#"{{"meta": {{"limit": 0, "offset": 0, "total_count": {}}}, "objects": [{}]}}"#,
            objects.len(),
            objects.join(",")
        )
    }

    #[test]
    fn differences_between_the_file_and_the_datatracker() {
        let mut export = Export::default();
        export
            .add_list(&list(&[
                group(1, "broadband-forum", "Broadband Forum", "active"),
                group(2, "mef", "MEF Forum", "active"),
                group(3, "new-sdo", "A New SDO", "active"),
                group(4, "old-sdo", "An Old SDO", "conclude"),
            ]))
            .expect("groups");
        export
            .add_list(&list(&[
                role(10, "liaiman", 1, "ann@example.org"),
                role(11, "liaiman", 2, "bo@example.org"),
                role(12, "liaiman", 2, "dee%40example.org"),
            ]))
            .expect("liaison managers");
        let d = diff(&relationships(), &export);
        assert_eq!(d.unknown_bodies, vec![("new-sdo".to_string(), "A New SDO".to_string())]);
        assert_eq!(d.managers_added, vec![("mef".to_string(), "dee@example.org".to_string())]);
        assert_eq!(d.managers_removed, vec![("mef".to_string(), "cy@example.org".to_string())]);
        assert_eq!(d.without_manager, vec!["Lonely SDO".to_string()]);
        assert!(!d.checked_busy && d.busy_without_backup.is_empty());

        // Ann chairs a working group and has no backup; Bo is an AD but has one.
        let mut wg = group(20, "detnet", "Deterministic Networking", "active");
        wg = wg.replace("grouptypename/sdo", "grouptypename/wg");
        export.add_list(&list(&[wg])).expect("wg");
        export
            .add_list(&list(&[role(30, "chair", 20, "Ann@Example.org"), role(31, "ad", 20, "bo@example.org")]))
            .expect("roles");
        let d = diff(&relationships(), &export);
        assert!(d.checked_busy);
        assert_eq!(
            d.busy_without_backup,
            vec![("broadband-forum".to_string(), "ann@example.org".to_string(), "chair of detnet".to_string())]
        );
    }

    #[test]
    fn only_what_the_export_lists_is_compared() {
        // A partial export (Broadband Forum alone) says nothing about MEF's managers, and a role
        // without an address names nobody.
        let mut export = Export::default();
        export.add_list(&list(&[group(1, "broadband-forum", "Broadband Forum", "active")])).expect("groups");
        let mut no_address = role(10, "liaiman", 1, "x@example.org");
        no_address = no_address.replace("\"/api/v1/person/email/x@example.org/\"", "null");
        export.add_list(&list(&[no_address])).expect("roles");
        assert!(export.roles.is_empty(), "{:?}", export.roles);
        let d = diff(&relationships(), &export);
        assert_eq!(d.managers_removed, vec![("broadband-forum".to_string(), "ann@example.org".to_string())]);
        assert!(d.managers_added.is_empty());
    }

    #[test]
    fn what_is_not_an_api_list_is_refused() {
        let mut export = Export::default();
        assert!(matches!(export.add_list("[]"), Err(ExportError::NotAList(_))));
        assert!(matches!(export.add_list(r#"{"objects": [{"acronym": "x"}]}"#), Err(ExportError::Missing { .. })));
        let group_without_acronym = r#"{"objects": [{"resource_uri": "/api/v1/group/group/1/", "name": "X"}]}"#;
        assert_eq!(
            export.add_list(group_without_acronym),
            Err(ExportError::Missing { what: "a group", field: "acronym" })
        );
        let role_without_group =
            r#"{"objects": [{"resource_uri": "/api/v1/group/role/1/", "name": "/api/v1/name/rolename/ad/"}]}"#;
        assert_eq!(export.add_list(role_without_group), Err(ExportError::Missing { what: "a role", field: "group" }));
        assert_eq!(email_of("/api/v1/person/email/a%2Bb%40x.org/").as_deref(), Some("a+b@x.org"));
    }
}
