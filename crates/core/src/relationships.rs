//! Relationships data: the organisations that send liaison statements, how to recognise them
//! (role addresses, domains, text markers), their groups and the names people write for them,
//! and who handles them on the IETF side (liaison managers, or the IAB liaison coordinators).
//!
//! The data lives in a TOML file that operators replace (`config/relationships.toml` is the
//! shipped default; its header documents every key). It is read in two stages like
//! the configuration: `Raw*` structs that mirror the file and reject unknown keys, then a
//! validated [`Relationships`] with lookup indices. Every error names the file, the line and the
//! key ([`ConfigError`]).
//!
//! Pure: the binary reads the file and hands its text to [`Relationships::from_str_at`]. All
//! lookups ignore case and surrounding or repeated whitespace.
//!
//! Names are compared after [`normalize_name`]; addresses after [`normalize_address`].

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use jiff::ToSpan;
use jiff::civil::Date;
use liaisond_model::{ConfigError, Seg, key_error, normalize_address, syntax_error};
use regex::RegexSet;
use serde::Deserialize;

/// Mail domains of the IETF side.
pub const IETF_DOMAINS: &[&str] = &["ietf.org", "iab.org", "irtf.org", "iesg.org", "rfc-editor.org"];

// ---------------------------------------------------------------------------------------------
// Stage one: the file as written.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    ietf: RawIetf,
    #[serde(default)]
    organization: Vec<RawOrganization>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIetf {
    coordinators: Vec<String>,
    #[serde(default)]
    own_addresses: Vec<String>,
    #[serde(default)]
    datatracker_senders: Vec<String>,
    #[serde(default)]
    coordinator_members: Vec<String>,
    #[serde(default)]
    group: Vec<RawIetfGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIetfGroup {
    acronym: String,
    name: String,
    kind: String,
    parent: Option<String>,
    #[serde(default)]
    names: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrganization {
    name: String,
    acronym: String,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    markers: Vec<String>,
    alias: Option<String>,
    #[serde(default)]
    managers: Vec<RawManager>,
    /// A string `"YYYY-MM-DD"` or a TOML local date.
    last_contact: Option<toml::Value>,
    ack: Option<bool>,
    #[serde(default)]
    group: Vec<RawGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    acronym: String,
    name: String,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    short_names: Vec<String>,
    #[serde(default)]
    addresses: Vec<String>,
    alias: Option<String>,
    #[serde(default)]
    managers: Vec<RawManager>,
    last_contact: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManager {
    name: String,
    email: String,
    role: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Stage two: validated.

/// The validated relationships data, with its lookup indices.
#[derive(Debug, Clone)]
pub struct Relationships {
    /// The file this was read from.
    pub path: PathBuf,
    coordinators: Vec<String>,
    own_addresses: Vec<String>,
    datatracker_senders: Vec<String>,
    coordinator_members: Vec<String>,
    organizations: Vec<Organization>,
    ietf_groups: Vec<IetfGroup>,
    index: Index,
}

/// One standards body that sends statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// Canonical name (`3GPP`, `ITU-T`, `IEEE 802`), as recorded in a statement's `from_org`.
    pub name: String,
    /// Datatracker acronym (`3gpp`, `itu-t`, `ieee-802`).
    pub acronym: String,
    /// Other names of the organisation, as written in the file.
    pub names: Vec<String>,
    /// Role addresses it sends from, normalised (lower case); may contain `*` before the `@`.
    pub addresses: Vec<String>,
    /// Its mail domains, lower case.
    pub domains: Vec<String>,
    /// Text that identifies it in a statement, as written in the file.
    pub markers: Vec<String>,
    /// The IETF side of the relationship with the whole organisation.
    pub liaison: Liaison,
    /// Whether senders from this organisation get an acknowledgement of receipt.
    pub ack: bool,
    pub groups: Vec<Group>,
}

/// One group of an organisation (a 3GPP working group, an ITU-T study group, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Datatracker acronym (`3gpp-tsgct-ct4`, `itu-t-sg-15`).
    pub acronym: String,
    /// Full name (`3GPP TSG CT WG4`).
    pub name: String,
    /// Other full names: they resolve without knowing the organisation.
    pub names: Vec<String>,
    /// Names that resolve only within the organisation (`CT4`, `SG15`).
    pub short_names: Vec<String>,
    /// Exact addresses the group sends from, normalised.
    pub addresses: Vec<String>,
    /// A relationship with this group only; `None`: the organisation's applies.
    pub liaison: Option<Liaison>,
}

/// The IETF side of a relationship: who handles statements from the organisation or group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Liaison {
    /// The role alias that reaches the manager(s), e.g. `bbf-liaison@ietf.org`.
    pub alias: Option<String>,
    pub primary: Option<Manager>,
    pub backup: Option<Manager>,
    /// The coordinators' last check-in with the manager(s).
    pub last_contact: Option<Date>,
}

/// An IETF liaison manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manager {
    pub name: String,
    /// Normalised (lower case).
    pub email: String,
}

/// A liaison manager and the relationship they serve (see [`Relationships::managers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerEntry<'a> {
    pub name: &'a str,
    /// Normalised (lower case).
    pub email: &'a str,
    pub relationship: String,
    /// The relationship's datatracker acronym (the organisation's, or its group's).
    pub acronym: &'a str,
    /// The last check-in recorded in the relationships data.
    pub last_contact: Option<Date>,
}

/// An IETF body that statements are addressed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IetfGroup {
    /// Datatracker acronym (`detnet`, `iesg`, `rtg`).
    pub acronym: String,
    pub name: String,
    pub kind: IetfGroupKind,
    /// Acronym of its area (or `irtf` for a research group).
    pub parent: Option<String>,
    /// Other names, as written in the file.
    pub names: Vec<String>,
}

/// What kind of IETF body an [`IetfGroup`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IetfGroupKind {
    /// The whole IETF.
    Ietf,
    Iesg,
    Iab,
    Irtf,
    Area,
    WorkingGroup,
    /// An IRTF research group: not part of the IETF (a statement to one is misaddressed).
    ResearchGroup,
}

impl IetfGroupKind {
    /// The name used in the file (`wg`, `area`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            IetfGroupKind::Ietf => "ietf",
            IetfGroupKind::Iesg => "iesg",
            IetfGroupKind::Iab => "iab",
            IetfGroupKind::Irtf => "irtf",
            IetfGroupKind::Area => "area",
            IetfGroupKind::WorkingGroup => "wg",
            IetfGroupKind::ResearchGroup => "rg",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ietf" => IetfGroupKind::Ietf,
            "iesg" => IetfGroupKind::Iesg,
            "iab" => IetfGroupKind::Iab,
            "irtf" => IetfGroupKind::Irtf,
            "area" => IetfGroupKind::Area,
            "wg" => IetfGroupKind::WorkingGroup,
            "rg" => IetfGroupKind::ResearchGroup,
            _ => return None,
        })
    }
}

/// Which rule matched a sender to an organisation, in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchRule {
    /// A known role address (exact, then `*` patterns).
    Address,
    /// A mail domain of the organisation (or a subdomain).
    Domain,
    /// A marker in the statement's text ([`Relationships::organizations_by_marker`]).
    Text,
}

impl MatchRule {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchRule::Address => "address",
            MatchRule::Domain => "domain",
            MatchRule::Text => "text",
        }
    }
}

/// A sender matched to an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderMatch<'a> {
    pub organization: &'a Organization,
    /// Set when the exact address belongs to one of the organisation's groups.
    pub group: Option<&'a Group>,
    pub rule: MatchRule,
}

/// What a group name resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupRef<'a> {
    /// The name of a whole organisation (`ITU-T`): its acronym stands for it.
    Organization(&'a Organization),
    Group(&'a Organization, &'a Group),
    Ietf(&'a IetfGroup),
}

impl<'a> GroupRef<'a> {
    /// The datatracker acronym.
    pub fn acronym(&self) -> &'a str {
        match self {
            GroupRef::Organization(o) => &o.acronym,
            GroupRef::Group(_, g) => &g.acronym,
            GroupRef::Ietf(g) => &g.acronym,
        }
    }

    /// Its full name.
    pub fn name(&self) -> &'a str {
        match self {
            GroupRef::Organization(o) => &o.name,
            GroupRef::Group(_, g) => &g.name,
            GroupRef::Ietf(g) => &g.name,
        }
    }

    /// The organisation it belongs to (`None` for the IETF's own groups).
    pub fn organization(&self) -> Option<&'a Organization> {
        match self {
            GroupRef::Organization(o) | GroupRef::Group(o, _) => Some(o),
            GroupRef::Ietf(_) => None,
        }
    }
}

impl Liaison {
    /// Whether someone other than the coordinators handles these statements: a named
    /// manager or a role alias.
    pub fn has_manager(&self) -> bool {
        self.primary.is_some() || self.alias.is_some()
    }

    /// Where to send a statement: the named managers (primary, then backup), or the alias when
    /// no one is named. Empty when the coordinators handle it.
    pub fn recipients(&self) -> Vec<&str> {
        let named: Vec<&str> = self.primary.iter().chain(self.backup.iter()).map(|m| m.email.as_str()).collect();
        if named.is_empty() { self.alias.iter().map(String::as_str).collect() } else { named }
    }

    /// Whether the yearly check-in with the manager(s) is due on `today`: never checked in,
    /// or the last one was a year or more ago. Always false without a manager.
    pub fn check_in_due(&self, today: Date) -> bool {
        if !self.has_manager() {
            return false;
        }
        match self.last_contact {
            None => true,
            Some(last) => last.checked_add(1.year()).is_ok_and(|due| due <= today),
        }
    }
}

impl Organization {
    /// Whether statements from the organisation (as a whole) go to a liaison manager rather
    /// than to the coordinators.
    pub fn has_manager(&self) -> bool {
        self.liaison.has_manager()
    }

    /// One of its groups, by datatracker acronym (case-insensitive).
    pub fn group(&self, acronym: &str) -> Option<&Group> {
        let acronym = acronym.trim();
        self.groups.iter().find(|g| g.acronym.eq_ignore_ascii_case(acronym))
    }

    /// The relationship that handles a statement from `group` (an acronym): the group's own
    /// when it has a manager, else the organisation's.
    pub fn liaison_for(&self, group: Option<&str>) -> &Liaison {
        group
            .and_then(|a| self.group(a))
            .and_then(|g| g.liaison.as_ref())
            .filter(|l| l.has_manager())
            .unwrap_or(&self.liaison)
    }
}

/// Where a name or address points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Org(usize),
    Group(usize, usize),
    Ietf(usize),
}

impl Target {
    fn org(self) -> Option<usize> {
        match self {
            Target::Org(o) | Target::Group(o, _) => Some(o),
            Target::Ietf(_) => None,
        }
    }
}

/// A prefix that names an organisation (or the IETF) in front of a group name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    Org(usize),
    Ietf,
}

#[derive(Debug, Clone)]
struct Pattern {
    local: String,
    domain: String,
    org: usize,
}

#[derive(Debug, Clone, Default)]
struct Index {
    /// Normalised full names (and acronyms) of organisations, groups and IETF groups.
    names: HashMap<String, Target>,
    /// The same names with a trailing `WG` kept; tried first.
    exact: HashMap<String, Target>,
    /// (organisation, normalised short name) → group.
    short: HashMap<(usize, String), usize>,
    /// Normalised organisation names, longest first, for "ITU-T SG 21"-style names.
    prefixes: Vec<(String, Prefix)>,
    /// Lower-case acronym → target.
    acronyms: HashMap<String, Target>,
    /// Exact address → organisation or group.
    addresses: HashMap<String, Target>,
    patterns: Vec<Pattern>,
    domains: HashMap<String, usize>,
    markers: Option<RegexSet>,
    /// Pattern index in `markers` → organisation.
    marker_orgs: Vec<usize>,
    own: HashSet<String>,
    datatracker: HashSet<String>,
    /// Every named liaison manager's address.
    managers: HashSet<String>,
}

impl Relationships {
    /// The relationships data shipped with liaisond (`config/relationships.toml`), used when
    /// the configuration names no file of its own.
    pub fn builtin() -> Relationships {
        const SHIPPED: &str = include_str!("../../../config/relationships.toml");
        // The shipped file is checked by a unit test, so it always parses.
        Relationships::from_str_at(SHIPPED, Path::new("(built-in relationships.toml)"))
            .unwrap_or_else(|e| panic!("the built-in relationships data is invalid: {e}"))
    }

    /// Parses relationships text that came from `path` (used in error messages).
    pub fn from_str_at(text: &str, path: &Path) -> Result<Relationships, ConfigError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| syntax_error(text, path, &e))?;
        Validator { text, path }.validate(raw)
    }

    /// The IAB liaison coordinators' addresses.
    pub fn coordinators(&self) -> &[String] {
        &self.coordinators
    }

    /// A group as mail names it: "Deterministic Networking (detnet)" when the data knows it
    /// (`org`: the organisation the statement came from, for its short names), else as written.
    pub fn group_label(&self, org: Option<&str>, name: &str) -> String {
        match self.resolve_group(org, name) {
            Some(g) if g.name().eq_ignore_ascii_case(g.acronym()) => g.name().to_string(),
            Some(g) => format!("{} ({})", g.name(), g.acronym()),
            None => name.to_string(),
        }
    }

    /// Whether `address` (normalised) may act on any statement by mail: a coordinators'
    /// address, or one of the people `ietf.coordinator_members` lists (the coordinators'
    /// address is usually a list, and people reply from their own).
    pub fn is_coordinator(&self, address: &str) -> bool {
        self.coordinators.iter().chain(&self.coordinator_members).any(|c| c == address)
    }

    /// Our own receiving aliases, as listed in `ietf.own_addresses` (normalised).
    pub fn own_addresses(&self) -> &[String] {
        &self.own_addresses
    }

    /// The datatracker's sender addresses (normalised).
    pub fn datatracker_senders(&self) -> &[String] {
        &self.datatracker_senders
    }

    /// Every organisation, in file order.
    pub fn organizations(&self) -> &[Organization] {
        &self.organizations
    }

    /// Every IETF group, in file order.
    pub fn ietf_groups(&self) -> &[IetfGroup] {
        &self.ietf_groups
    }

    /// An organisation by its canonical name, acronym or one of its other names.
    pub fn organization(&self, name: &str) -> Option<&Organization> {
        match self.lookup_name(name) {
            Some(Target::Org(o)) => self.organizations.get(o),
            _ => None,
        }
    }

    /// The organisation a known role address belongs to: exact addresses (the organisation's
    /// and its groups') first, then `*` patterns in file order. `addr` may be written
    /// `Name <addr>` or `mailto:addr`.
    pub fn organization_by_address(&self, addr: &str) -> Option<&Organization> {
        let a = normalize_address(addr)?;
        if let Some(o) = self.index.addresses.get(&a).and_then(|t| t.org()) {
            return self.organizations.get(o);
        }
        let (local, domain) = a.rsplit_once('@')?;
        self.index
            .patterns
            .iter()
            .find(|p| p.domain == domain && wildcard_match(&p.local, local))
            .and_then(|p| self.organizations.get(p.org))
    }

    /// The group whose exact address this is (e.g. `tsbsg15@itu.int` → ITU-T SG15).
    pub fn group_by_address(&self, addr: &str) -> Option<(&Organization, &Group)> {
        let a = normalize_address(addr)?;
        match self.index.addresses.get(&a) {
            Some(Target::Group(o, g)) => self.group_at(*o, *g),
            _ => None,
        }
    }

    /// The organisation owning a domain, given as a domain or as an address. Subdomains match
    /// (`list.itu.int` → ITU-T); the longest listed domain wins. This does not look at role
    /// addresses: `3GPPLiaison@etsi.org` is ETSI here (see [`Self::organization_by_sender`]).
    pub fn organization_by_domain(&self, domain_or_address: &str) -> Option<&Organization> {
        let domain = domain_of(domain_or_address)?;
        let mut rest = domain.as_str();
        // A listed domain is a valid one, at most MAX_DOMAIN_LEN bytes: only suffixes that
        // short can match. Hashing every suffix of a sender's domain of 300,000 dots took
        // seconds (quadratic; found by tests/fuzz.rs).
        if rest.len() > MAX_DOMAIN_LEN {
            let first = rest.len() - MAX_DOMAIN_LEN - 1;
            let dot = rest.as_bytes()[first..].iter().position(|&b| b == b'.')?;
            rest = &rest[first + dot + 1..];
        }
        loop {
            if let Some(o) = self.index.domains.get(rest) {
                return self.organizations.get(*o);
            }
            rest = rest.split_once('.')?.1;
        }
    }

    /// Matches a sender address by the first two routing rules, in order: known role address,
    /// then domain. (The third rule, the statement's text, is [`Self::organizations_by_marker`].)
    pub fn organization_by_sender(&self, addr: &str) -> Option<SenderMatch<'_>> {
        if let Some(organization) = self.organization_by_address(addr) {
            let group = self.group_by_address(addr).map(|(_, g)| g);
            return Some(SenderMatch { organization, group, rule: MatchRule::Address });
        }
        self.organization_by_domain(addr).map(|organization| SenderMatch {
            organization,
            group: None,
            rule: MatchRule::Domain,
        })
    }

    /// Every organisation one of whose markers occurs in `text` (case-insensitive, at the
    /// start of a word, any whitespace between words), in file order.
    pub fn organizations_by_marker(&self, text: &str) -> Vec<&Organization> {
        let Some(set) = &self.index.markers else {
            return Vec::new();
        };
        set.matches(text)
            .iter()
            .filter_map(|i| self.index.marker_orgs.get(i))
            .filter_map(|o| self.organizations.get(*o))
            .collect()
    }

    /// Normalises a group name as written to its datatracker acronym. See [`Self::resolve_group`].
    pub fn group_acronym(&self, org: Option<&str>, name: &str) -> Option<&str> {
        self.resolve_group(org, name).map(|g| g.acronym())
    }

    /// Resolves a group name as written (`ITU-T SG15`, `Study Group 15`, `CT4`, `DetNet WG`).
    ///
    /// `org` is the organisation the name was found in (its canonical name, acronym or other
    /// name; an unknown one counts as none). Short names (`SG15`, `CT4`) resolve only within
    /// it; full names, acronyms and IETF group names resolve without it. A name that starts
    /// with an organisation's name resolves the rest as a name of that organisation's groups
    /// (`3GPP CT4`, `ITU-T SG 21`), and one that starts with `IETF` as an IETF group. The name
    /// of an organisation itself resolves to the organisation.
    pub fn resolve_group(&self, org: Option<&str>, name: &str) -> Option<GroupRef<'_>> {
        let (exact, n) = name_forms(name);
        if n.is_empty() {
            return None;
        }
        let org = org.and_then(|o| match self.lookup_name(o) {
            Some(Target::Org(i)) => Some(i),
            _ => None,
        });
        if let Some(o) = org
            && let Some(g) = self.index.short.get(&(o, n.clone()))
        {
            return self.target(Target::Group(o, *g));
        }
        if let Some(t) = self.index.exact.get(&exact).or_else(|| self.index.names.get(&n)) {
            return self.target(*t);
        }
        for (prefix, p) in &self.index.prefixes {
            let Some(rest) = n.strip_prefix(prefix.as_str()) else { continue };
            let Some(rest) = rest.strip_prefix([' ', '/']) else { continue };
            let rest = rest.trim_start_matches([' ', '/']);
            let found = match *p {
                Prefix::Org(o) => match self.index.short.get(&(o, rest.to_string())) {
                    Some(g) => Some(Target::Group(o, *g)),
                    None => self.index.names.get(rest).copied().filter(|t| matches!(t, Target::Group(x, _) if *x == o)),
                },
                Prefix::Ietf => self.index.names.get(rest).copied().filter(|t| matches!(t, Target::Ietf(_))),
            };
            if let Some(t) = found {
                return self.target(t);
            }
        }
        None
    }

    /// Any group (an organisation's, or the IETF's) by datatracker acronym, case-insensitive.
    pub fn group_by_acronym(&self, acronym: &str) -> Option<GroupRef<'_>> {
        self.index.acronyms.get(&acronym.trim().to_ascii_lowercase()).and_then(|t| self.target(*t))
    }

    /// An IETF group by any of its names or its acronym (`DetNet WG`, `IETF DetNet WG`,
    /// `Deterministic Networking`, `the IESG`).
    pub fn ietf_group(&self, name: &str) -> Option<&IetfGroup> {
        match self.resolve_group(None, name) {
            Some(GroupRef::Ietf(g)) => Some(g),
            _ => None,
        }
    }

    /// Whether `addr` is one of our own addresses: `ietf.own_addresses`, the coordinators, and
    /// every organisation's and group's alias (not the managers' personal addresses).
    pub fn is_own_address(&self, addr: &str) -> bool {
        normalize_address(addr).is_some_and(|a| self.index.own.contains(&a))
    }

    /// Every named liaison manager (primary and backup) with the relationship they serve
    /// (the organisation, or `Organisation / group`) and the file's last check-in date.
    pub fn managers(&self) -> Vec<ManagerEntry<'_>> {
        let mut all = Vec::new();
        for org in &self.organizations {
            let liaisons = std::iter::once((org.name.clone(), org.acronym.as_str(), &org.liaison)).chain(
                org.groups.iter().filter_map(|g| {
                    g.liaison.as_ref().map(|l| (format!("{} / {}", org.name, g.name), g.acronym.as_str(), l))
                }),
            );
            for (relationship, acronym, liaison) in liaisons {
                for m in liaison.primary.iter().chain(liaison.backup.iter()) {
                    all.push(ManagerEntry {
                        name: &m.name,
                        email: &m.email,
                        relationship: relationship.clone(),
                        acronym,
                        last_contact: liaison.last_contact,
                    });
                }
            }
        }
        all
    }

    /// Whether `addr` is a liaison manager's (primary or backup, of any relationship).
    pub fn is_manager(&self, addr: &str) -> bool {
        normalize_address(addr).is_some_and(|a| self.index.managers.contains(&a))
    }

    /// Whether `addr` is on the IETF side of a liaison relationship: our own addresses and the
    /// coordinators, every liaison manager, the datatracker, and IETF/IAB/IRTF mail domains.
    pub fn is_ietf_side(&self, addr: &str) -> bool {
        if self.is_own_address(addr) || self.is_datatracker_sender(addr) || self.is_manager(addr) {
            return true;
        }
        let domain = addr.rsplit('@').next().unwrap_or_default().to_ascii_lowercase();
        IETF_DOMAINS.iter().any(|d| domain == *d || domain.strip_suffix(d).is_some_and(|sub| sub.ends_with('.')))
    }

    /// Whether `addr` is one the datatracker sends "New Liaison Statement" copies from.
    pub fn is_datatracker_sender(&self, addr: &str) -> bool {
        normalize_address(addr).is_some_and(|a| self.index.datatracker.contains(&a))
    }

    fn lookup_name(&self, name: &str) -> Option<Target> {
        let (exact, n) = name_forms(name);
        self.index.exact.get(&exact).or_else(|| self.index.names.get(&n)).copied()
    }

    fn group_at(&self, o: usize, g: usize) -> Option<(&Organization, &Group)> {
        let org = self.organizations.get(o)?;
        Some((org, org.groups.get(g)?))
    }

    fn target(&self, t: Target) -> Option<GroupRef<'_>> {
        match t {
            Target::Org(o) => self.organizations.get(o).map(GroupRef::Organization),
            Target::Group(o, g) => self.group_at(o, g).map(|(o, g)| GroupRef::Group(o, g)),
            Target::Ietf(i) => self.ietf_groups.get(i).map(GroupRef::Ietf),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Normalisation.

/// Normalises a group or organisation name for comparison: lower case; whitespace, hyphens,
/// typographic dashes and underscores become one space; a number is split from letters before
/// it (`SG15` → `sg 15`, `CT4` → `ct 4`); spaces around `/` are dropped; punctuation at either
/// end, a leading `the` and a trailing `WG` or `working group` are removed.
pub fn normalize_name(s: &str) -> String {
    name_forms(s).1
}

/// A name normalised without and with its trailing `WG` / `working group` removed (the first
/// tells "Operations and Management Area Working Group" from "Operations and Management Area").
fn name_forms(s: &str) -> (String, String) {
    let mut spaced = String::with_capacity(s.len() + 4);
    let mut prev: Option<char> = None;
    for c in s.chars() {
        let c = if c.is_whitespace() || c == '-' || c == '_' || is_dash(c) { ' ' } else { c };
        for c in c.to_lowercase() {
            if c.is_ascii_digit() && prev.is_some_and(char::is_alphabetic) {
                spaced.push(' ');
            }
            spaced.push(c);
            prev = Some(c);
        }
    }
    let mut words = spaced.split_whitespace().collect::<Vec<_>>().join(" ");
    words = words.replace(" /", "/").replace("/ ", "/");
    let mut n = words.trim_matches(|c: char| !c.is_alphanumeric());
    while let Some(rest) = n.strip_prefix("the ") {
        n = rest;
    }
    let exact = n.to_string();
    loop {
        let before = n.len();
        for suffix in [" working group", " wg"] {
            if let Some(rest) = n.strip_suffix(suffix) {
                n = rest.trim_end_matches(|c: char| !c.is_alphanumeric());
            }
        }
        if n.len() == before {
            return (exact, n.to_string());
        }
    }
}

fn is_dash(c: char) -> bool {
    matches!(c, '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{fe58}' | '\u{fe63}' | '\u{ff0d}')
}

/// The domain of an address, or a domain as given, normalised.
fn domain_of(s: &str) -> Option<String> {
    if s.contains('@') {
        let a = normalize_address(s)?;
        return a.rsplit_once('@').map(|(_, d)| d.to_string());
    }
    let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty() { None } else { Some(d) }
}

/// The longest domain name (RFC 1035 §2.3.4: 255 octets on the wire, 253 characters written).
const MAX_DOMAIN_LEN: usize = 253;

/// Whether `domain` (already lower case) is a syntactically valid host name with at least two
/// labels.
fn is_valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    domain.len() <= MAX_DOMAIN_LEN
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Whether `local` (already lower case) is a plausible unquoted local part; `*` allowed only
/// when `pattern`.
fn is_valid_local(local: &str, pattern: bool) -> bool {
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'+-/=?^_`{|}~.".contains(c) || (pattern && c == '*'))
}

/// Glob match where `*` matches any run of characters (including none).
fn wildcard_match(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = s.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A marker as a regular expression: case-insensitive, any whitespace between words, any dash
/// for a hyphen, at the start of a word when it starts with a letter or digit.
fn marker_regex(markers: &[String]) -> String {
    let alternatives: Vec<String> = markers
        .iter()
        .map(|m| {
            let m = m.split_whitespace().collect::<Vec<_>>().join(" ");
            let mut r = String::new();
            if m.chars().next().is_some_and(char::is_alphanumeric) {
                // An ASCII word boundary: the Unicode one makes the regex engine fall back from
                // its DFA to the PikeVM on every text, which was 60% of `liaisond parse`'s time.
                r.push_str(r"(?-u:\b)");
            }
            for c in m.chars() {
                match c {
                    ' ' => r.push_str(r"\s+"),
                    '-' => r.push_str("[-\u{2010}-\u{2015}\u{2212}]"),
                    c => r.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
                }
            }
            r
        })
        .collect();
    format!("(?i)(?:{})", alternatives.join("|"))
}

// ---------------------------------------------------------------------------------------------
// Validation.

/// A dotted key path such as `organization[2].group[0].names[1]`.
#[derive(Debug, Clone, Default)]
struct At(Vec<Seg<'static>>);

impl At {
    fn key(&self, k: &'static str) -> At {
        let mut v = self.0.clone();
        v.push(Seg::Key(k));
        At(v)
    }

    fn index(&self, i: usize) -> At {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        At(v)
    }
}

struct Validator<'a> {
    text: &'a str,
    path: &'a Path,
}

/// Everything indexed so far, with a label for each target to name it in errors.
#[derive(Default)]
struct Builder {
    index: Index,
    labels: HashMap<Target, String>,
    /// Keys of `index.names` that came from a name with a trailing `WG` removed.
    weak: HashSet<String>,
    marker_owner: HashMap<String, usize>,
}

impl Validator<'_> {
    /// An error located at `at` (or at its nearest existing parent).
    fn err(&self, at: &At, message: impl Into<String>) -> ConfigError {
        key_error(self.text, self.path, &at.0, message)
    }

    fn validate(&self, raw: RawFile) -> Result<Relationships, ConfigError> {
        let mut b = Builder::default();
        let ietf_at = At::default().key("ietf");

        if raw.ietf.coordinators.is_empty() {
            return Err(self.err(&ietf_at.key("coordinators"), "must list at least one address"));
        }
        let coordinators = self.addresses(&ietf_at.key("coordinators"), &raw.ietf.coordinators, false)?;
        let own_addresses = self.addresses(&ietf_at.key("own_addresses"), &raw.ietf.own_addresses, false)?;
        let datatracker_senders =
            self.addresses(&ietf_at.key("datatracker_senders"), &raw.ietf.datatracker_senders, false)?;
        let coordinator_members =
            self.addresses(&ietf_at.key("coordinator_members"), &raw.ietf.coordinator_members, false)?;
        b.index.own.extend(coordinators.iter().cloned());
        b.index.own.extend(own_addresses.iter().cloned());
        b.index.datatracker.extend(datatracker_senders.iter().cloned());

        let mut ietf_groups = Vec::new();
        let mut parents = Vec::new();
        for (i, g) in raw.ietf.group.into_iter().enumerate() {
            let at = ietf_at.key("group").index(i);
            let target = Target::Ietf(i);
            b.labels.insert(target, format!("the IETF group `{}`", g.acronym));
            let acronym = self.acronym(&mut b, &at.key("acronym"), &g.acronym, target)?;
            self.add_name(&mut b, &at.key("name"), &g.name, target)?;
            for (k, n) in g.names.iter().enumerate() {
                self.add_name(&mut b, &at.key("names").index(k), n, target)?;
            }
            let kind = IetfGroupKind::parse(g.kind.trim()).ok_or_else(|| {
                self.err(
                    &at.key("kind"),
                    format!(
                        "`{}` is not one of \"ietf\", \"iesg\", \"iab\", \"irtf\", \"area\", \"wg\", \"rg\"",
                        g.kind
                    ),
                )
            })?;
            let parent = g.parent.map(|p| p.trim().to_ascii_lowercase());
            if let Some(p) = &parent {
                parents.push((at.key("parent"), p.clone(), acronym.clone()));
            }
            ietf_groups.push(IetfGroup { acronym, name: g.name.trim().to_string(), kind, parent, names: g.names });
        }
        for (at, parent, child) in parents {
            if parent == child || !matches!(b.index.acronyms.get(&parent), Some(Target::Ietf(_))) {
                return Err(self.err(&at, format!("`{parent}` is not the acronym of another IETF group in this file")));
            }
        }

        let mut organizations: Vec<Organization> = Vec::new();
        for (o, r) in raw.organization.into_iter().enumerate() {
            let at = At::default().key("organization").index(o);
            organizations.push(self.organization(&mut b, &at, o, r)?);
        }

        // IETF names may prefix a group name ("IETF DetNet WG"), as may organisation names.
        for g in ietf_groups.iter().filter(|g| g.kind == IetfGroupKind::Ietf) {
            for n in std::iter::once(&g.name).chain(&g.names).chain(std::iter::once(&g.acronym)) {
                b.index.prefixes.push((normalize_name(n), Prefix::Ietf));
            }
        }
        b.index.prefixes.retain(|(p, _)| !p.is_empty());
        b.index.prefixes.sort_by(|a, c| c.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&c.0)));
        b.index.prefixes.dedup_by(|a, c| a.0 == c.0);

        let mut alternatives = Vec::new();
        for (o, org) in organizations.iter().enumerate() {
            if !org.markers.is_empty() {
                alternatives.push(marker_regex(&org.markers));
                b.index.marker_orgs.push(o);
            }
        }
        if !alternatives.is_empty() {
            let set = RegexSet::new(&alternatives).map_err(|e| {
                self.err(&At::default().key("organization"), format!("the markers do not make a valid pattern: {e}"))
            })?;
            b.index.markers = Some(set);
        }

        let mut index = b.index;
        for org in &organizations {
            let liaisons = std::iter::once(&org.liaison).chain(org.groups.iter().filter_map(|g| g.liaison.as_ref()));
            for l in liaisons {
                index.managers.extend(l.primary.iter().chain(l.backup.iter()).map(|m| m.email.clone()));
            }
        }
        Ok(Relationships {
            path: self.path.to_path_buf(),
            coordinators,
            own_addresses,
            datatracker_senders,
            coordinator_members,
            organizations,
            ietf_groups,
            index,
        })
    }

    fn organization(
        &self,
        b: &mut Builder,
        at: &At,
        o: usize,
        r: RawOrganization,
    ) -> Result<Organization, ConfigError> {
        let target = Target::Org(o);
        let name = r.name.trim().to_string();
        b.labels.insert(target, format!("the organisation `{name}`"));
        let acronym = self.acronym(b, &at.key("acronym"), &r.acronym, target)?;
        self.add_name(b, &at.key("name"), &r.name, target)?;
        for (k, n) in r.names.iter().enumerate() {
            self.add_name(b, &at.key("names").index(k), n, target)?;
        }
        for n in std::iter::once(&r.name).chain(&r.names).chain(std::iter::once(&r.acronym)) {
            b.index.prefixes.push((normalize_name(n), Prefix::Org(o)));
        }

        let addresses = self.addresses(&at.key("addresses"), &r.addresses, true)?;
        for (k, a) in addresses.iter().enumerate() {
            self.add_address(b, &at.key("addresses").index(k), a, target)?;
        }

        let mut domains = Vec::new();
        for (k, d) in r.domains.iter().enumerate() {
            let key = at.key("domains").index(k);
            let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
            if !is_valid_domain(&d) {
                return Err(self.err(&key, format!("`{d}` is not a domain name (like \"itu.int\")")));
            }
            match b.index.domains.get(&d) {
                Some(x) if *x == o => continue,
                Some(x) => {
                    let owner = b.labels.get(&Target::Org(*x)).cloned().unwrap_or_default();
                    return Err(self.err(&key, format!("the domain `{d}` already belongs to {owner}")));
                }
                None => {
                    b.index.domains.insert(d.clone(), o);
                    domains.push(d);
                }
            }
        }

        let mut markers = Vec::new();
        for (k, m) in r.markers.iter().enumerate() {
            let key = at.key("markers").index(k);
            let norm = m.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
            if norm.chars().filter(|c| c.is_alphanumeric()).count() < 2 {
                return Err(self.err(&key, "a marker needs at least two letters or digits"));
            }
            match b.marker_owner.get(&norm) {
                Some(x) if *x == o => continue,
                Some(x) => {
                    let owner = b.labels.get(&Target::Org(*x)).cloned().unwrap_or_default();
                    return Err(self.err(&key, format!("the marker `{}` is already one of {owner}", m.trim())));
                }
                None => {
                    b.marker_owner.insert(norm, o);
                    markers.push(m.trim().to_string());
                }
            }
        }

        let liaison = self.liaison(at, r.alias.as_deref(), &r.managers, r.last_contact.as_ref())?;
        for a in liaison.alias.iter() {
            b.index.own.insert(a.clone());
        }

        let mut groups = Vec::new();
        for (g, rg) in r.group.into_iter().enumerate() {
            groups.push(self.group(b, &at.key("group").index(g), o, g, rg)?);
        }

        Ok(Organization {
            name,
            acronym,
            names: r.names.iter().map(|n| n.trim().to_string()).collect(),
            addresses,
            domains,
            markers,
            liaison,
            ack: r.ack.unwrap_or(true),
            groups,
        })
    }

    fn group(&self, b: &mut Builder, at: &At, o: usize, g: usize, r: RawGroup) -> Result<Group, ConfigError> {
        let target = Target::Group(o, g);
        b.labels.insert(target, format!("the group `{}`", r.acronym.trim()));
        let acronym = self.acronym(b, &at.key("acronym"), &r.acronym, target)?;
        self.add_name(b, &at.key("name"), &r.name, target)?;
        for (k, n) in r.names.iter().enumerate() {
            self.add_name(b, &at.key("names").index(k), n, target)?;
        }
        for (k, n) in r.short_names.iter().enumerate() {
            let key = at.key("short_names").index(k);
            let norm = normalize_name(n);
            if norm.is_empty() {
                return Err(self.err(&key, "is empty"));
            }
            match b.index.short.get(&(o, norm.clone())) {
                Some(x) if *x == g => {}
                Some(x) => {
                    let other = b.labels.get(&Target::Group(o, *x)).cloned().unwrap_or_default();
                    return Err(self.err(&key, format!("the short name `{}` already names {other}", n.trim())));
                }
                None => {
                    b.index.short.insert((o, norm), g);
                }
            }
        }
        let addresses = self.addresses(&at.key("addresses"), &r.addresses, false)?;
        for (k, a) in addresses.iter().enumerate() {
            self.add_address(b, &at.key("addresses").index(k), a, target)?;
        }
        let liaison = if r.alias.is_some() || !r.managers.is_empty() {
            let l = self.liaison(at, r.alias.as_deref(), &r.managers, r.last_contact.as_ref())?;
            for a in l.alias.iter() {
                b.index.own.insert(a.clone());
            }
            Some(l)
        } else if r.last_contact.is_some() {
            return Err(self.err(&at.key("last_contact"), "a group's last_contact needs managers or an alias"));
        } else {
            None
        };
        Ok(Group {
            acronym,
            name: r.name.trim().to_string(),
            names: r.names.iter().map(|n| n.trim().to_string()).collect(),
            short_names: r.short_names.iter().map(|n| n.trim().to_string()).collect(),
            addresses,
            liaison,
        })
    }

    /// Checks and registers a datatracker acronym (unique across the file).
    fn acronym(&self, b: &mut Builder, at: &At, acronym: &str, target: Target) -> Result<String, ConfigError> {
        let a = acronym.trim().to_ascii_lowercase();
        let ok = a.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && a.len() <= 64
            && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(self.err(at, format!("`{acronym}` is not a datatracker acronym (letters, digits and '-')")));
        }
        if let Some(other) = b.index.acronyms.get(&a) {
            let other = b.labels.get(other).cloned().unwrap_or_default();
            return Err(self.err(at, format!("the acronym `{a}` is already used by {other}")));
        }
        b.index.acronyms.insert(a.clone(), target);
        self.add_name(b, at, &a, target)?;
        Ok(a)
    }

    /// Registers a full name (unique across the file once normalised, except for repeats that
    /// name the same thing).
    ///
    /// A name written with a trailing `WG` also claims the name without it, unless another
    /// entry has that name as written: "Operations and Management Area Working Group" (opsawg)
    /// and "Operations and Management Area" (ops) can both be listed.
    fn add_name(&self, b: &mut Builder, at: &At, name: &str, target: Target) -> Result<(), ConfigError> {
        let (exact, stripped) = name_forms(name);
        if stripped.is_empty() {
            return Err(self.err(at, "is empty"));
        }
        let clash = |t: &Target| {
            let other = b.labels.get(t).cloned().unwrap_or_default();
            self.err(at, format!("the name `{}` already names {other}", name.trim()))
        };
        match b.index.exact.get(&exact) {
            Some(t) if *t != target => return Err(clash(t)),
            Some(_) => {}
            None => {
                b.index.exact.insert(exact.clone(), target);
            }
        }
        let plain = exact == stripped;
        match b.index.names.get(&stripped).copied() {
            None => {
                b.index.names.insert(stripped.clone(), target);
                if !plain {
                    b.weak.insert(stripped);
                }
            }
            Some(t) if t == target => {
                if plain {
                    b.weak.remove(&stripped);
                }
            }
            Some(t) => match (plain, b.weak.contains(&stripped)) {
                // The name as written wins over another's name without its "WG".
                (true, true) => {
                    b.index.names.insert(stripped.clone(), target);
                    b.weak.remove(&stripped);
                }
                // Reachable through the spelling with "WG".
                (false, false) => {}
                _ => return Err(clash(&t)),
            },
        }
        Ok(())
    }

    /// Registers a role address (exact or pattern) of an organisation or group.
    fn add_address(&self, b: &mut Builder, at: &At, a: &str, target: Target) -> Result<(), ConfigError> {
        let org = target.org().unwrap_or_default();
        if let Some((local, domain)) = a.split_once('@')
            && local.contains('*')
        {
            if b.index.patterns.iter().any(|p| p.local == local && p.domain == domain && p.org != org) {
                return Err(self.err(at, format!("the address pattern `{a}` is already used by another organisation")));
            }
            b.index.patterns.push(Pattern { local: local.to_string(), domain: domain.to_string(), org });
            return Ok(());
        }
        match b.index.addresses.get(a) {
            Some(t) if t.org() != Some(org) => {
                let other = b.labels.get(t).cloned().unwrap_or_default();
                Err(self.err(at, format!("the address `{a}` already belongs to {other}")))
            }
            Some(Target::Group(_, _)) if matches!(target, Target::Group(_, _)) => {
                Err(self.err(at, format!("the address `{a}` already belongs to another group")))
            }
            // A group's address is more specific than its organisation's: the group wins.
            Some(Target::Group(_, _)) => Ok(()),
            _ => {
                b.index.addresses.insert(a.to_string(), target);
                Ok(())
            }
        }
    }

    /// Checks a list of addresses and returns them normalised.
    fn addresses(&self, at: &At, list: &[String], patterns: bool) -> Result<Vec<String>, ConfigError> {
        let mut out: Vec<String> = Vec::new();
        for (k, a) in list.iter().enumerate() {
            let n = self.address(&at.index(k), a, patterns)?;
            if !out.contains(&n) {
                out.push(n);
            }
        }
        Ok(out)
    }

    fn address(&self, at: &At, a: &str, pattern: bool) -> Result<String, ConfigError> {
        let n = a.trim().to_lowercase();
        let ok = match n.rsplit_once('@') {
            Some((local, domain)) => is_valid_local(local, pattern) && is_valid_domain(domain),
            None => false,
        };
        if ok {
            Ok(n)
        } else if !pattern && n.contains('*') {
            Err(self.err(at, format!("`{}`: a \"*\" pattern is allowed only in an organisation's addresses", a.trim())))
        } else {
            Err(self.err(at, format!("`{}` is not an e-mail address (like \"name@example.org\")", a.trim())))
        }
    }

    fn liaison(
        &self,
        at: &At,
        alias: Option<&str>,
        managers: &[RawManager],
        last_contact: Option<&toml::Value>,
    ) -> Result<Liaison, ConfigError> {
        let alias = match alias {
            Some(a) => Some(self.address(&at.key("alias"), a, false)?),
            None => None,
        };
        let mut primary = None;
        let mut backup = None;
        for (k, m) in managers.iter().enumerate() {
            let mat = at.key("managers").index(k);
            if m.name.trim().is_empty() {
                return Err(self.err(&mat.key("name"), "is empty"));
            }
            let manager =
                Manager { name: m.name.trim().to_string(), email: self.address(&mat.key("email"), &m.email, false)? };
            let slot = match m.role.as_deref().map(str::trim).unwrap_or("primary") {
                "primary" => &mut primary,
                "backup" => &mut backup,
                other => {
                    return Err(self.err(&mat.key("role"), format!("`{other}` is not one of \"primary\", \"backup\"")));
                }
            };
            if slot.is_some() {
                let role = m.role.as_deref().map(str::trim).unwrap_or("primary");
                return Err(self.err(&mat, format!("there can be only one {role} manager")));
            }
            *slot = Some(manager);
        }
        if backup.is_some() && primary.is_none() {
            return Err(self.err(&at.key("managers"), "a backup manager needs a primary manager"));
        }
        let last_contact = match last_contact {
            Some(v) => Some(self.date(&at.key("last_contact"), v)?),
            None => None,
        };
        Ok(Liaison { alias, primary, backup, last_contact })
    }

    fn date(&self, at: &At, v: &toml::Value) -> Result<Date, ConfigError> {
        let parsed = match v {
            toml::Value::String(s) => parse_ymd(s.trim()),
            toml::Value::Datetime(dt) => match (dt.date, dt.time, dt.offset) {
                (Some(d), None, None) => {
                    Date::new(i16::try_from(d.year).unwrap_or(i16::MAX), d.month as i8, d.day as i8).ok()
                }
                _ => None,
            },
            _ => None,
        };
        parsed.ok_or_else(|| self.err(at, format!("`{v}` is not a date; write \"YYYY-MM-DD\"")))
    }
}

/// Parses exactly `YYYY-MM-DD` into a valid calendar date.
fn parse_ymd(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    let year: i16 = s.get(0..4)?.parse().ok()?;
    let month: i8 = s.get(5..7)?.parse().ok()?;
    let day: i8 = s.get(8..10)?.parse().ok()?;
    Date::new(year, month, day).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"[ietf]
coordinators = ["liaison-coordination@iab.org"]
own_addresses = ["statements@ietf.org"]
datatracker_senders = ["statements@ietf.org"]

[[ietf.group]]
acronym = "ietf"
name = "Internet Engineering Task Force"
kind = "ietf"
names = ["IETF"]

[[ietf.group]]
acronym = "rtg"
name = "Routing Area"
kind = "area"

[[ietf.group]]
acronym = "detnet"
name = "Deterministic Networking"
kind = "wg"
parent = "rtg"
names = ["DetNet"]

[[organization]]
name = "ITU-T"
acronym = "itu-t"
addresses = ["tsbsg*@itu.int", "tsbtsag@itu.int"]
domains = ["itu.int"]
markers = ["ITU-T Study Group"]
alias = "itu-t-liaison@iab.org"
managers = [
    { name = "Ann Example", email = "ann@example.org" },
    { name = "Bob Example", email = "bob@example.org", role = "backup" },
]
last_contact = "2025-06-03"

[[organization.group]]
acronym = "itu-t-sg-15"
name = "ITU-T SG15"
names = ["ITU-T Study Group 15"]
short_names = ["SG15", "Study Group 15"]
addresses = ["tsbsg15@itu.int"]

[[organization]]
name = "3GPP"
acronym = "3gpp"
addresses = ["3GPPLiaison@etsi.org"]
domains = ["3gpp.org"]
markers = ["3GPP TSG"]

[[organization.group]]
acronym = "3gpp-tsgct-ct4"
name = "3GPP TSG CT WG4"
short_names = ["CT4", "C4"]
managers = [{ name = "Carla Example", email = "carla@example.org" }]

[[organization]]
name = "ETSI"
acronym = "etsi"
domains = ["etsi.org"]
markers = ["ETSI TC"]
ack = false
"#;

    fn path() -> PathBuf {
        PathBuf::from("/etc/liaisond/relationships.toml")
    }

    fn parse(text: &str) -> Result<Relationships, ConfigError> {
        Relationships::from_str_at(text, &path())
    }

    fn sample() -> Relationships {
        parse(SAMPLE).unwrap_or_else(|e| panic!("sample: {e}"))
    }

    /// Parses `text`, expects an error at `key` on `line`, and returns its message.
    fn error_at(text: &str, key: &str, line: usize) -> String {
        let e = match parse(text) {
            Ok(_) => panic!("expected an error at {key}"),
            Err(e) => e,
        };
        assert_eq!(e.key.as_deref(), Some(key), "{e}");
        assert_eq!(e.line, Some(line), "{e}");
        assert!(e.to_string().starts_with(&format!("{}:{line}:", path().display())), "{e}");
        e.message
    }

    fn with_org(extra: &str) -> String {
        format!("{SAMPLE}\n{extra}")
    }

    // --- normalisation ------------------------------------------------------------------

    #[test]
    fn names_normalise_case_spaces_dashes_numbers_and_wg() {
        for s in ["SG15", "SG 15", "sg-15", "  Sg\u{2011}15 ", "SG_15"] {
            assert_eq!(normalize_name(s), "sg 15", "{s}");
        }
        assert_eq!(normalize_name("DetNet WG"), "detnet");
        assert_eq!(normalize_name("DetNet Working Group."), "detnet");
        assert_eq!(normalize_name("the IESG"), "iesg");
        assert_eq!(normalize_name("3GPP TSG CT WG4"), "3gpp tsg ct wg 4");
        assert_eq!(normalize_name("JTC 1 / SC 27"), "jtc 1/sc 27");
        assert_eq!(normalize_name("JTC1/SC27"), "jtc 1/sc 27");
        assert_eq!(normalize_name("IEEE 802.1 WG"), "ieee 802.1");
        assert_eq!(normalize_name("ITU\u{2013}T   Study  Group 15"), "itu t study group 15");
        assert_eq!(normalize_name("WG"), "wg");
        assert_eq!(normalize_name(" -- "), "");
    }

    #[test]
    fn addresses_normalise_display_names_mailto_and_case() {
        assert_eq!(normalize_address(" Ann <Ann@Example.ORG> ").as_deref(), Some("ann@example.org"));
        assert_eq!(normalize_address("mailto:TSBSG15@itu.int").as_deref(), Some("tsbsg15@itu.int"));
        assert_eq!(normalize_address("ann @ example . org.").as_deref(), Some("ann@example.org"));
        assert_eq!(normalize_address("not an address"), None);
        assert_eq!(normalize_address("@example.org"), None);
        assert!(wildcard_match("tsbsg*", "tsbsg15"));
        assert!(wildcard_match("tsbsg*", "tsbsg"));
        assert!(wildcard_match("*liaison*", "3gppliaison"));
        assert!(!wildcard_match("tsbsg*", "tsbtsag"));
    }

    // --- lookups ------------------------------------------------------------------------

    #[test]
    fn organization_by_address_exact_then_pattern() {
        let r = sample();
        let name = |a: &str| r.organization_by_address(a).map(|o| o.name.as_str());
        assert_eq!(name("3GPPLiaison@etsi.org"), Some("3GPP"));
        assert_eq!(name("\"3GPP Liaison\" <3gppliaison@ETSI.ORG>"), Some("3GPP"));
        assert_eq!(name("tsbsg13@itu.int"), Some("ITU-T"), "pattern");
        assert_eq!(name("TSBTSAG@itu.int"), Some("ITU-T"));
        assert_eq!(name("someone@itu.int"), None, "a domain is not an address");
        assert_eq!(name("tsbsg13@itu.int.example"), None);
        let (o, g) = r.group_by_address("tsbsg15@itu.int").expect("group address");
        assert_eq!((o.name.as_str(), g.acronym.as_str()), ("ITU-T", "itu-t-sg-15"));
        assert!(r.group_by_address("tsbsg13@itu.int").is_none());
    }

    #[test]
    fn organization_by_domain_matches_subdomains() {
        let r = sample();
        let name = |a: &str| r.organization_by_domain(a).map(|o| o.name.as_str());
        assert_eq!(name("itu.int"), Some("ITU-T"));
        assert_eq!(name("  LIST.ITU.INT. "), Some("ITU-T"));
        assert_eq!(name("rapporteur@list.itu.int"), Some("ITU-T"));
        assert_eq!(name("3GPPLiaison@etsi.org"), Some("ETSI"), "domains only");
        assert_eq!(name("notitu.int"), None);
        assert_eq!(name("int"), None);
        assert_eq!(name(""), None);
    }

    #[test]
    fn a_domain_of_a_million_labels_is_matched_in_one_pass() {
        // Regression (tests/fuzz.rs): each suffix of the sender's domain was hashed in turn,
        // quadratic in its length (seconds for 300,000 dots; hours for this one).
        let r = sample();
        let name = |a: &str| r.organization_by_domain(a).map(|o| o.name.as_str());
        let dots = ".".repeat(1_000_000);
        assert_eq!(name(&format!("someone@evil{dots}itu.int")), Some("ITU-T"));
        assert_eq!(name(&format!("someone@evil{dots}")), None);
        assert_eq!(name(&format!("{}.list.itu.int", "a".repeat(300))), Some("ITU-T"));
        assert_eq!(name(&format!("x.{}", "a".repeat(300))), None);
        // At the limit: the longest suffix that could be listed is still looked up.
        let long = format!("{}.itu.int", "a.".repeat(122) + "a");
        assert_eq!(long.len(), 253);
        assert_eq!(name(&format!("b.{long}")), Some("ITU-T"));
    }

    #[test]
    fn exact_address_wins_over_domain() {
        let r = sample();
        let m = r.organization_by_sender("3GPPLiaison@etsi.org").expect("3gpp");
        assert_eq!((m.organization.name.as_str(), m.rule), ("3GPP", MatchRule::Address));
        let m = r.organization_by_sender("support@etsi.org").expect("etsi");
        assert_eq!((m.organization.name.as_str(), m.rule), ("ETSI", MatchRule::Domain));
        let m = r.organization_by_sender("tsbsg15@itu.int").expect("sg15");
        assert_eq!(m.group.map(|g| g.acronym.as_str()), Some("itu-t-sg-15"));
        assert!(r.organization_by_sender("someone@example.com").is_none());
    }

    #[test]
    fn organizations_by_marker_finds_markers_in_text() {
        let r = sample();
        let names = |t: &str| r.organizations_by_marker(t).iter().map(|o| o.name.clone()).collect::<Vec<_>>();
        assert_eq!(names("3GPP TSG CT WG4 Meeting #52  C4-111025"), ["3GPP"]);
        assert_eq!(names("Source: itu\u{2011}t study\n  group 15"), ["ITU-T"], "case, dashes and whitespace");
        assert_eq!(names("cc: ETSI TC INT; from 3gpp   tsg SA"), ["3GPP", "ETSI"], "file order");
        assert!(names("X3GPP TSG").is_empty(), "starts a word");
        assert!(names("nothing here").is_empty());
    }

    #[test]
    fn group_acronym_short_names_need_the_organization() {
        let r = sample();
        assert_eq!(r.group_acronym(Some("ITU-T"), "SG15"), Some("itu-t-sg-15"));
        assert_eq!(r.group_acronym(Some("itu-t"), "sg-15"), Some("itu-t-sg-15"), "by acronym");
        assert_eq!(r.group_acronym(Some("ITU-T"), "Study Group 15"), Some("itu-t-sg-15"));
        assert_eq!(r.group_acronym(None, "SG15"), None, "short names need the organisation");
        assert_eq!(r.group_acronym(Some("3GPP"), "SG15"), None, "nor another organisation's");
        assert_eq!(r.group_acronym(Some("3GPP"), "C4"), Some("3gpp-tsgct-ct4"));
        assert_eq!(r.group_acronym(Some("Unknown SDO"), "CT4"), None);
    }

    #[test]
    fn group_acronym_resolves_full_names_acronyms_and_prefixes() {
        let r = sample();
        assert_eq!(r.group_acronym(None, "ITU-T Study Group 15"), Some("itu-t-sg-15"));
        assert_eq!(r.group_acronym(None, "ITU-T SG 15"), Some("itu-t-sg-15"));
        assert_eq!(r.group_acronym(None, "itu-t-sg-15"), Some("itu-t-sg-15"));
        assert_eq!(r.group_acronym(None, "3GPP TSG CT WG4"), Some("3gpp-tsgct-ct4"));
        assert_eq!(r.group_acronym(None, "3GPP CT4"), Some("3gpp-tsgct-ct4"), "organisation prefix + short name");
        assert_eq!(r.group_acronym(None, "ITU-T Study Group 15 WG"), Some("itu-t-sg-15"));
        assert_eq!(r.group_acronym(Some("3GPP"), "ITU-T SG15"), Some("itu-t-sg-15"), "full names cross organisations");
        assert_eq!(r.group_acronym(None, "ITU-T"), Some("itu-t"), "an organisation stands for itself");
        assert_eq!(r.group_acronym(None, "DetNet WG"), Some("detnet"));
        assert_eq!(r.group_acronym(Some("ITU-T"), "IETF DetNet WG"), Some("detnet"), "IETF prefix");
        assert_eq!(r.group_acronym(None, "IETF SG15"), None);
        assert_eq!(r.group_acronym(None, "  "), None);
        assert!(r.resolve_group(None, "C4").is_none());
        assert!(matches!(r.group_by_acronym("ITU-T-SG-15"), Some(GroupRef::Group(o, _)) if o.name == "ITU-T"));
        assert_eq!(r.organization("itu-t").map(|o| o.name.as_str()), Some("ITU-T"));
        assert!(r.organization("ITU-T SG15").is_none());
    }

    #[test]
    fn ietf_group_by_any_name() {
        let r = sample();
        for name in
            ["detnet", "DetNet", "DetNet WG", "IETF DetNet WG", "Deterministic Networking", "DETNET working group"]
        {
            let g = r.ietf_group(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(g.acronym, "detnet");
            assert_eq!(g.kind, IetfGroupKind::WorkingGroup);
            assert_eq!(g.parent.as_deref(), Some("rtg"));
        }
        assert_eq!(r.ietf_group("the IETF").map(|g| g.kind), Some(IetfGroupKind::Ietf));
        assert!(r.ietf_group("ITU-T SG15").is_none(), "not an IETF group");
        assert!(r.ietf_group("TEAS").is_none());
    }

    #[test]
    fn own_addresses_coordinators_and_datatracker() {
        let r = sample();
        assert_eq!(r.coordinators(), ["liaison-coordination@iab.org"]);
        assert!(r.is_own_address("Liaison-Coordination@IAB.org"), "coordinators");
        assert!(r.is_own_address("<statements@ietf.org>"));
        assert!(r.is_own_address("itu-t-liaison@iab.org"), "a manager alias");
        assert!(!r.is_own_address("ann@example.org"), "not a manager's own address");
        assert!(!r.is_own_address("3GPPLiaison@etsi.org"));
        assert!(r.is_datatracker_sender("Statements@IETF.org"));
        assert!(!r.is_datatracker_sender("liaison-coordination@iab.org"));
    }

    #[test]
    fn liaisons_route_to_managers_or_coordinators() {
        let r = sample();
        let itu = r.organization("ITU-T").expect("itu");
        assert!(itu.has_manager());
        assert_eq!(itu.liaison.recipients(), ["ann@example.org", "bob@example.org"]);
        assert_eq!(itu.liaison.primary.as_ref().map(|m| m.name.as_str()), Some("Ann Example"));
        assert!(itu.ack);
        let gpp = r.organization("3gpp").expect("3gpp");
        assert!(!gpp.has_manager());
        assert_eq!(gpp.liaison_for(Some("3GPP-TSGCT-CT4")).recipients(), ["carla@example.org"], "group's own");
        assert!(gpp.liaison_for(None).recipients().is_empty());
        assert_eq!(itu.liaison_for(Some("itu-t-sg-15")), &itu.liaison, "falls back to the organisation");
        let etsi = r.organization("ETSI").expect("etsi");
        assert!(!etsi.has_manager() && !etsi.ack);
        let alias_only = Liaison { alias: Some("x-liaison@ietf.org".into()), ..Liaison::default() };
        assert_eq!(alias_only.recipients(), ["x-liaison@ietf.org"]);
    }

    #[test]
    fn check_in_is_due_a_year_after_last_contact() {
        let r = sample();
        let itu = &r.organization("ITU-T").expect("itu").liaison;
        assert_eq!(itu.last_contact, Some(jiff::civil::date(2025, 6, 3)));
        assert!(!itu.check_in_due(jiff::civil::date(2026, 6, 2)));
        assert!(itu.check_in_due(jiff::civil::date(2026, 6, 3)));
        let ct4 = r.organization("3GPP").and_then(|o| o.group("3gpp-tsgct-ct4")).and_then(|g| g.liaison.clone());
        assert!(ct4.expect("ct4").check_in_due(jiff::civil::date(2020, 1, 1)), "never checked in");
        assert!(!Liaison::default().check_in_due(jiff::civil::date(2030, 1, 1)), "no manager, no check-in");
    }

    #[test]
    fn toml_dates_are_accepted_too() {
        let r = parse(&SAMPLE.replace("last_contact = \"2025-06-03\"", "last_contact = 2025-06-04")).expect("date");
        assert_eq!(r.organizations()[0].liaison.last_contact, Some(jiff::civil::date(2025, 6, 4)));
    }

    // --- validation errors --------------------------------------------------------------

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = parse(&SAMPLE.replace("ack = false", "ack = false\ncolour = \"blue\"")).expect_err("unknown key");
        assert_eq!(e.line, Some(63), "{e}");
        assert!(e.message.contains("colour"), "{e}");
        assert!(e.to_string().starts_with(&format!("{}:63:", path().display())), "{e}");
    }

    #[test]
    fn syntax_error_names_the_line() {
        let e = parse("[ietf]\ncoordinators = [\"a@b.org\"\n").expect_err("syntax");
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn missing_coordinators_are_refused() {
        error_at(
            &SAMPLE.replace("coordinators = [\"liaison-coordination@iab.org\"]", "coordinators = []"),
            "ietf.coordinators",
            2,
        );
    }

    #[test]
    fn malformed_addresses_are_refused() {
        let m = error_at(
            &SAMPLE.replace("[\"liaison-coordination@iab.org\"]", "[\"liaison-coordination(at)iab.org\"]"),
            "ietf.coordinators[0]",
            2,
        );
        assert!(m.contains("not an e-mail address"), "{m}");
        let m = error_at(
            &SAMPLE.replace("\"ann@example.org\"", "\"ann*@example.org\""),
            "organization[0].managers[0].email",
            32,
        );
        assert!(m.contains("pattern"), "{m}");
        error_at(&SAMPLE.replace("tsbsg*@itu.int", "tsbsg*@itu*.int"), "organization[0].addresses[0]", 27);
        error_at(
            &SAMPLE.replace("alias = \"itu-t-liaison@iab.org\"", "alias = \"itu-t-liaison\""),
            "organization[0].alias",
            30,
        );
    }

    #[test]
    fn malformed_domains_are_refused() {
        let m = error_at(
            &SAMPLE.replace("domains = [\"itu.int\"]", "domains = [\"itu_int\"]"),
            "organization[0].domains[0]",
            28,
        );
        assert!(m.contains("not a domain"), "{m}");
        error_at(&SAMPLE.replace("domains = [\"3gpp.org\"]", "domains = [\"3gpp\"]"), "organization[1].domains[0]", 48);
    }

    #[test]
    fn a_domain_belongs_to_one_organization() {
        let m = error_at(
            &SAMPLE.replace("domains = [\"3gpp.org\"]", "domains = [\"3gpp.org\", \"ITU.int\"]"),
            "organization[1].domains[1]",
            48,
        );
        assert!(m.contains("ITU-T"), "{m}");
    }

    #[test]
    fn an_exact_address_belongs_to_one_organization() {
        let m = error_at(
            &SAMPLE.replace("[\"3GPPLiaison@etsi.org\"]", "[\"3GPPLiaison@etsi.org\", \"tsbtsag@itu.int\"]"),
            "organization[1].addresses[1]",
            47,
        );
        assert!(m.contains("ITU-T"), "{m}");
    }

    #[test]
    fn organization_names_and_acronyms_are_unique() {
        let m =
            error_at(&with_org("[[organization]]\nname = \"itu-t\"\nacronym = \"itu2\"\n"), "organization[3].name", 65);
        assert!(m.contains("organisation `ITU-T`"), "{m}");
        let m = error_at(
            &with_org("[[organization]]\nname = \"ITU\"\nacronym = \"ITU-T\"\n"),
            "organization[3].acronym",
            66,
        );
        assert!(m.contains("acronym `itu-t`"), "{m}");
    }

    #[test]
    fn group_acronyms_are_unique_across_organizations() {
        let text = with_org("[[organization.group]]\nacronym = \"itu-t-sg-15\"\nname = \"ETSI TC INT\"\n");
        let m = error_at(&text, "organization[2].group[0].acronym", 65);
        assert!(m.contains("the group `itu-t-sg-15`"), "{m}");
        let text = with_org("[[organization.group]]\nacronym = \"detnet\"\nname = \"ETSI DetNet\"\n");
        let m = error_at(&text, "organization[2].group[0].acronym", 65);
        assert!(m.contains("IETF group"), "{m}");
        let text = with_org("[[organization.group]]\nacronym = \"etsi tc\"\nname = \"ETSI TC INT\"\n");
        error_at(&text, "organization[2].group[0].acronym", 65);
    }

    #[test]
    fn full_names_are_unique_and_short_names_unique_within_the_organization() {
        let text = with_org("[[organization.group]]\nacronym = \"etsi-sg15\"\nname = \"ITU-T SG 15\"\n");
        let m = error_at(&text, "organization[2].group[0].name", 66);
        assert!(m.contains("already names the group `itu-t-sg-15`"), "{m}");
        let text = with_org(
            "[[organization.group]]\nacronym = \"etsi-int\"\nname = \"ETSI TC INT\"\nshort_names = [\"INT\", \"int\"]\n",
        );
        parse(&text).expect("a repeat within one group is harmless");
        let text = SAMPLE.replace("short_names = [\"CT4\", \"C4\"]", "short_names = [\"CT4\", \"C4\"]\n\n[[organization.group]]\nacronym = \"3gpp-tsgct-ct1\"\nname = \"3GPP TSG CT WG1\"\nshort_names = [\"CT 4\"]");
        let m = error_at(&text, "organization[1].group[1].short_names[0]", 59);
        assert!(m.contains("3gpp-tsgct-ct4"), "{m}");
        let text =
            with_org("[[organization.group]]\nacronym = \"etsi-sg15\"\nname = \"ETSI X\"\nshort_names = [\"SG15\"]\n");
        parse(&text).expect("short names may repeat across organisations");
    }

    #[test]
    fn a_trailing_wg_tells_names_apart_only_when_written() {
        let text = with_org(
            "[[organization.group]]\nacronym = \"etsi-a\"\nname = \"ETSI X\"\n\n\
             [[organization.group]]\nacronym = \"etsi-b\"\nname = \"ETSI X Working Group\"\n",
        );
        let r = parse(&text).expect("a name and the same name with WG may name two groups");
        assert_eq!(r.group_acronym(None, "ETSI X Working Group"), Some("etsi-b"));
        assert_eq!(r.group_acronym(None, "ETSI X"), Some("etsi-a"));
        assert_eq!(r.group_acronym(None, "ETSI X WG"), Some("etsi-a"), "not written that way: the plain name wins");
        let text = with_org(
            "[[organization.group]]\nacronym = \"etsi-a\"\nname = \"ETSI X WG\"\n\n\
             [[organization.group]]\nacronym = \"etsi-b\"\nname = \"ETSI X Working Group\"\n",
        );
        let m = error_at(&text, "organization[2].group[1].name", 70);
        assert!(m.contains("etsi-a"), "{m}");
    }

    #[test]
    fn markers_belong_to_one_organization() {
        let m = error_at(
            &SAMPLE.replace("markers = [\"ETSI TC\"]", "markers = [\"ETSI TC\", \"3gpp  tsg\"]"),
            "organization[2].markers[1]",
            61,
        );
        assert!(m.contains("3GPP"), "{m}");
        error_at(&SAMPLE.replace("markers = [\"ETSI TC\"]", "markers = [\"E\"]"), "organization[2].markers[0]", 61);
    }

    #[test]
    fn at_most_one_primary_and_one_backup() {
        let two_primaries = SAMPLE.replace("role = \"backup\"", "role = \"primary\"");
        let m = error_at(&two_primaries, "organization[0].managers[1]", 33);
        assert!(m.contains("only one primary"), "{m}");
        let two_backups = SAMPLE.replace("{ name = \"Ann Example\", email = \"ann@example.org\" }", "{ name = \"Ann Example\", email = \"ann@example.org\", role = \"primary\" },\n    { name = \"Dan\", email = \"dan@example.org\", role = \"backup\" }");
        let m = error_at(&two_backups, "organization[0].managers[2]", 34);
        assert!(m.contains("only one backup"), "{m}");
        let backup_only = SAMPLE.replace("{ name = \"Ann Example\", email = \"ann@example.org\" },\n", "");
        let m = error_at(&backup_only, "organization[0].managers", 31);
        assert!(m.contains("needs a primary"), "{m}");
        error_at(&SAMPLE.replace("role = \"backup\"", "role = \"deputy\""), "organization[0].managers[1].role", 33);
        error_at(&SAMPLE.replace("name = \"Bob Example\"", "name = \" \""), "organization[0].managers[1].name", 33);
    }

    #[test]
    fn dates_must_be_yyyy_mm_dd() {
        for bad in ["\"2025-6-3\"", "\"2025-02-30\"", "\"03.06.2025\"", "2025-06-03T10:00:00", "20250603"] {
            let text = SAMPLE.replace("last_contact = \"2025-06-03\"", &format!("last_contact = {bad}"));
            let m = error_at(&text, "organization[0].last_contact", 35);
            assert!(m.contains("YYYY-MM-DD"), "{bad}: {m}");
        }
        let text = SAMPLE.replace("addresses = [\"tsbsg15@itu.int\"]", "last_contact = \"2025-01-01\"");
        let m = error_at(&text, "organization[0].group[0].last_contact", 42);
        assert!(m.contains("needs managers"), "{m}");
    }

    #[test]
    fn ietf_groups_need_a_known_kind_and_parent() {
        error_at(&SAMPLE.replace("kind = \"wg\"", "kind = \"working group\""), "ietf.group[2].kind", 20);
        let m = error_at(&SAMPLE.replace("parent = \"rtg\"", "parent = \"routing\""), "ietf.group[2].parent", 21);
        assert!(m.contains("`routing`"), "{m}");
        error_at(&SAMPLE.replace("parent = \"rtg\"", "parent = \"detnet\""), "ietf.group[2].parent", 21);
        error_at(&SAMPLE.replace("acronym = \"rtg\"", "acronym = \"-rtg\""), "ietf.group[1].acronym", 13);
    }

    // --- the shipped file ---------------------------------------------------------------

    #[test]
    fn the_shipped_relationships_file_resolves_real_world_spellings() {
        let r = Relationships::builtin();

        let cases: &[(Option<&str>, &str, &str)] = &[
            (Some("ITU-T"), "SG15", "itu-t-sg-15"),
            (Some("ITU-T"), "SG 15", "itu-t-sg-15"),
            (Some("ITU-T"), "Study Group 15", "itu-t-sg-15"),
            (None, "ITU-T SG15", "itu-t-sg-15"),
            (None, "ITU-T Study Group 15", "itu-t-sg-15"),
            (None, "itu-t-sg-13", "itu-t-sg-13"),
            (None, "ITU-T TSAG", "itu-t-tsag"),
            (Some("itu-t"), "TSAG", "itu-t-tsag"),
            (None, "3GPP TSG CT WG4", "3gpp-tsgct-ct4"),
            (None, "TSG CT WG4", "3gpp-tsgct-ct4"),
            (None, "CT WG4", "3gpp-tsgct-ct4"),
            (Some("3GPP"), "CT4", "3gpp-tsgct-ct4"),
            (Some("3GPP"), "C4", "3gpp-tsgct-ct4"),
            (None, "3GPP TSG SA WG2", "3gpp-tsgsa-sa2"),
            (Some("3GPP"), "SA3", "3gpp-tsgsa-sa3"),
            (None, "3GPP TSG RAN WG2", "3gpp-tsgran-ran2"),
            (None, "IEEE 802.1", "ieee-802-1"),
            (None, "IEEE 802.1 WG", "ieee-802-1"),
            (None, "802.1", "ieee-802-1"),
            (None, "ieee-802-11", "ieee-802-11"),
            (None, "ISO/IEC JTC 1/SC 27", "iso-iec-jtc1-sc27"),
            (None, "JTC1/SC27", "iso-iec-jtc1-sc27"),
            (Some("ISO/IEC JTC 1"), "SC 27", "iso-iec-jtc1-sc27"),
            (None, "ISO/IEC JTC 1/SC 29", "iso-iec-jtc1-sc29"),
            (None, "DetNet", "detnet"),
            (None, "DetNet WG", "detnet"),
            (None, "IETF DetNet WG", "detnet"),
            (None, "Deterministic Networking", "detnet"),
            (None, "the IESG", "iesg"),
            (None, "Routing Area", "rtg"),
            (None, "Operations and Management Area", "ops"),
            (None, "OPS Area", "ops"),
            (None, "Operations and Management Area Working Group", "opsawg"),
            (None, "OPSAWG", "opsawg"),
            (None, "Broadband Forum", "broadband-forum"),
        ];
        for (org, name, want) in cases {
            assert_eq!(r.group_acronym(*org, name), Some(*want), "{org:?} {name}");
        }
        assert_eq!(r.group_acronym(None, "SG15"), None);
        assert_eq!(r.group_acronym(None, "CT4"), None);

        for sg in [2, 3, 5, 9, 11, 12, 13, 15, 16, 17, 20] {
            let acronym = format!("itu-t-sg-{sg}");
            assert_eq!(r.group_acronym(Some("ITU-T"), &format!("SG{sg}")), Some(acronym.as_str()));
            assert_eq!(r.group_acronym(None, &format!("ITU-T Study Group {sg}")), Some(acronym.as_str()));
            let (o, g) = r.group_by_address(&format!("tsbsg{sg}@itu.int")).unwrap_or_else(|| panic!("SG{sg}"));
            assert_eq!((o.name.as_str(), g.acronym.as_str()), ("ITU-T", acronym.as_str()));
        }
        for wg in [
            "iesg", "iab", "ietf", "art", "int", "ops", "rtg", "sec", "wit", "detnet", "teas", "netmod", "opsawg",
            "ccamp", "lamps", "mpls", "bess", "spring", "pce", "idr", "6man", "v6ops", "dnsop", "add", "tls", "quic",
            "httpbis", "ippm", "lsr", "raw", "nmop", "anima", "acme", "emu", "suit",
        ] {
            assert_eq!(r.ietf_group(wg).map(|g| g.acronym.as_str()), Some(wg));
        }

        let sender = |a: &str| r.organization_by_sender(a).map(|m| (m.organization.name.as_str(), m.rule));
        assert_eq!(sender("3GPPLiaison@etsi.org"), Some(("3GPP", MatchRule::Address)));
        assert_eq!(sender("isgsupport@etsi.org"), Some(("ETSI", MatchRule::Domain)));
        assert_eq!(sender("tsbsg99@itu.int"), Some(("ITU-T", MatchRule::Address)));
        assert_eq!(sender("rapporteur@lists.itu.int"), Some(("ITU-T", MatchRule::Domain)));
        assert_eq!(sender("liaisons@broadband-forum.org"), Some(("Broadband Forum", MatchRule::Address)));
        assert_eq!(sender("LIAISONS@MEF.NET"), Some(("MEF", MatchRule::Address)));
        assert_eq!(sender("GSMALiaisons@gsma.com"), Some(("GSMA", MatchRule::Address)));
        assert_eq!(sender("secretariat@din.de"), Some(("ISO/IEC JTC 1", MatchRule::Domain)));
        assert_eq!(sender("chair@ieee.org"), Some(("IEEE 802", MatchRule::Domain)));
        assert_eq!(sender("someone@example.com"), None);

        let marker = |t: &str| r.organizations_by_marker(t).iter().map(|o| o.name.clone()).collect::<Vec<_>>();
        assert_eq!(marker("LIAISE-420-02"), ["Broadband Forum"]);
        assert_eq!(marker("Our reference: LS00307_001"), ["MEF"]);
        assert_eq!(marker("3GPP TSG CT WG4 Meeting #52  C4-111025"), ["3GPP"]);
        assert_eq!(marker("doc.: IEEE 802.11-09/0718r1"), ["IEEE 802"]);
        assert_eq!(marker("ISO/IEC JTC 1/SC 29 N 1234"), ["ISO/IEC JTC 1"]);
        assert_eq!(marker("ITU-T Study Group 15 - LIAISON STATEMENT"), ["ITU-T"]);

        for no_manager in ["ETSI", "GSMA", "ISO/IEC JTC 1"] {
            assert!(!r.organization(no_manager).expect(no_manager).has_manager(), "{no_manager}");
        }
        for org in ["3GPP", "ITU-T", "IEEE 802", "Broadband Forum", "MEF", "W3C", "Unicode Consortium", "ICANN"] {
            let o = r.organization(org).expect(org);
            assert!(o.has_manager() && o.ack, "{org}");
        }
        let jtc1 = r.organization("JTC 1").expect("jtc1");
        assert!(jtc1.liaison_for(Some("iso-iec-jtc1-sc27")).has_manager());
        assert!(!jtc1.liaison_for(Some("iso-iec-jtc1-sc6")).has_manager(), "SC 6 goes to the coordinators");
        let itu = r.organization("itu-t").expect("itu");
        assert!(itu.liaison.primary.is_some() && itu.liaison.backup.is_some());
        assert_eq!(r.coordinators(), ["liaison-coordination@iab.org"]);
        for own in
            ["liaison-coordination@iab.org", "statements@ietf.org", "bbf-liaison@ietf.org", "itu-t-liaison@iab.org"]
        {
            assert!(r.is_own_address(own), "{own}");
        }
        assert!(r.is_datatracker_sender("statements@ietf.org"));
    }
}
