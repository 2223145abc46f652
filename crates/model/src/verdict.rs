//! How a message was judged: its class, the statement it belongs to, its route, and what the
//! judge asks of the store's history to decide it.

use serde::Serialize;

/// The classification and routing of one message, as recorded (the core's `judge` decides it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub class: Class,
    pub reason: String,
    /// For a follow-up or duplicate: the statement it belongs to, and its tracking ID.
    pub related_statement: Option<i64>,
    pub related_tracking_id: Option<String>,
    pub no_ack: Option<String>,
    pub sender: Option<String>,
    pub sender_verified: bool,
    pub verification: String,
    pub relationship: Option<String>,
    pub organization: Option<String>,
    pub rule: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub route_reason: String,
    pub candidates: Vec<String>,
    /// For a follow-up from the IETF side: `Ok(why)` when it answers its statement (which is
    /// then done), `Err(why not)` when it looked like an answer but cannot be trusted.
    pub answers: Option<Result<String, String>>,
    /// The datatracker's record of the statement, from its "New Liaison Statement" notice.
    pub datatracker_record: Option<DatatrackerRecord>,
    /// The statement's page in the datatracker when known: from this notice, or the record of
    /// the statement a follow-up belongs to (mail about it links there).
    pub datatracker_url: Option<String>,
    /// The commands at the top of a reply, each decided (the store applies the allowed ones).
    pub commands: Vec<Command>,
    /// A reply with commands from someone who may act: answered with a confirmation, not
    /// notified. Otherwise the commands' refusals are only events.
    pub command_reply: bool,
    /// A statement the IETF sends to another body (`direction = outgoing`).
    pub outgoing: bool,
    /// For an incoming statement: the open outgoing statement it answers (then done).
    pub answers_outgoing: Option<Target>,
    /// For a reply to a yearly check-in request: `Ok` (recorded as the check-in, its text as
    /// the report) when the manager asked sent it, verified; else why not.
    pub check_in_answer: Option<Result<CheckInAnswer, String>>,
}

/// A yearly check-in request liaisond sent, as the history knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckInRequest {
    pub id: i64,
    /// The manager asked (normalised).
    pub manager: String,
}

/// A manager's answer to a check-in request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckInAnswer {
    pub request: i64,
    pub manager: String,
    /// Their text (without what it quotes), kept as the check-in's report.
    pub report: String,
}

/// A statement's page in the datatracker: `https://datatracker.ietf.org/liaison/2099/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatatrackerRecord {
    pub url: String,
    /// The number in the URL (the datatracker's liaison statement id).
    pub number: u32,
}

impl Verdict {
    /// A verdict of `class` for `reason`, related to nothing, routed nowhere.
    pub fn new(class: Class, reason: impl Into<String>) -> Verdict {
        Verdict {
            class,
            reason: reason.into(),
            related_statement: None,
            related_tracking_id: None,
            no_ack: None,
            sender: None,
            sender_verified: false,
            verification: String::new(),
            relationship: None,
            organization: None,
            rule: None,
            to: Vec::new(),
            cc: Vec::new(),
            route_reason: String::new(),
            candidates: Vec::new(),
            answers: None,
            datatracker_record: None,
            datatracker_url: None,
            commands: Vec::new(),
            command_reply: false,
            outgoing: false,
            answers_outgoing: None,
            check_in_answer: None,
        }
    }
}

/// The classes, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Statement,
    FollowUp,
    Duplicate,
    AutoReply,
    Bounce,
    List,
    OwnMail,
    Other,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Statement => "statement",
            Class::FollowUp => "follow_up",
            Class::Duplicate => "duplicate",
            Class::AutoReply => "auto_reply",
            Class::Bounce => "bounce",
            Class::List => "list",
            Class::OwnMail => "own_mail",
            Class::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Class> {
        Some(match s {
            "statement" => Class::Statement,
            "follow_up" => Class::FollowUp,
            "duplicate" => Class::Duplicate,
            "auto_reply" => Class::AutoReply,
            "bounce" => Class::Bounce,
            "list" => Class::List,
            "own_mail" => Class::OwnMail,
            "other" => Class::Other,
            _ => return None,
        })
    }
}

/// A statement already held, as the [`History`] knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KnownStatement {
    /// The store's statement number.
    pub id: i64,
    /// `LS-2026-0042`.
    pub tracking_id: String,
    /// Who answers for it: its assignee, else whom it was routed to (a follow-up goes to them).
    pub handlers: Vec<String>,
    /// The organisation it came from, when matched.
    pub organization: Option<String>,
    /// Its sender and the addresses a reply must go to (a reply to it goes to one of them, or
    /// to the organisation).
    pub other_side: Vec<String>,
    /// Its page in the datatracker, once recorded there.
    pub datatracker_url: Option<String>,
    /// Whom it was routed to (its liaison manager, else the coordinators).
    pub routed_to: Vec<String>,
    /// The operator's (or a command's) assignment.
    pub assignee: Option<String>,
    /// A statement the IETF sent (the other body's answer is awaited), not one it received.
    pub outgoing: bool,
}

/// Answers about earlier messages.
pub trait History {
    /// The statement with this tracking ID (`LS-2026-0042`).
    fn by_tracking_id(&self, tracking_id: &str) -> Option<KnownStatement>;
    /// The statement that one of these Message-IDs belongs to: mail we sent about it, or the
    /// message that brought it (or a follow-up to it).
    fn by_thread(&self, message_ids: &[String]) -> Option<KnownStatement>;
    /// The statement that arrived in a message with this Message-ID.
    fn by_message_id(&self, message_id: &str) -> Option<KnownStatement>;
    /// A statement with this title from this organisation (for the datatracker's copies).
    fn by_title_and_org(&self, title: &str, from_org: &str) -> Option<KnownStatement>;
    /// The latest statement with this title, from anyone (a datatracker reply names the
    /// statement it answers by its title).
    fn by_title(&self, _title: &str) -> Option<KnownStatement> {
        None
    }
    /// The statement a datatracker notice is of: with this title from this organisation, and
    /// without a record or with this one (a notice never takes over another statement's
    /// record), recorded in the last year.
    fn by_notice(&self, title: &str, from_org: &str, _url: Option<&str>) -> Option<KnownStatement> {
        self.by_title_and_org(title, from_org)
    }
    /// An open statement with this title from this organisation, recorded in the datatracker
    /// and here in the last 30 days: the one whose own mail arrives after its notice.
    fn recorded_recently(&self, title: &str, from_org: &str) -> Option<KnownStatement> {
        self.by_title_and_org(title, from_org).filter(|k| k.datatracker_url.is_some())
    }
    /// The open outgoing statement with this title, when only one has it.
    fn outgoing_by_title(&self, _title: &str) -> Option<KnownStatement> {
        None
    }
    /// The statement recorded in the datatracker at this URL.
    fn by_record(&self, _url: &str) -> Option<KnownStatement> {
        None
    }
    /// The check-in request one of these Message-IDs is (a reply to it threads to it).
    fn check_in_request(&self, _message_ids: &[String]) -> Option<CheckInRequest> {
        None
    }
}

/// No earlier messages (`liaisond parse`, tests).
pub struct NoHistory;

impl History for NoHistory {
    fn by_tracking_id(&self, _: &str) -> Option<KnownStatement> {
        None
    }
    fn by_thread(&self, _: &[String]) -> Option<KnownStatement> {
        None
    }
    fn by_message_id(&self, _: &str) -> Option<KnownStatement> {
        None
    }
    fn by_title_and_org(&self, _: &str, _: &str) -> Option<KnownStatement> {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Commands in replies: what a person asks by answering a mail liaisond sent (`Done: ...`), as
// the judge decided it, and what the store made of it.

/// What one command asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "command", content = "value")]
pub enum Action {
    /// Close the statement: answered (the reason says how).
    Done(String),
    /// Close the statement: no reply is intended (the reason says why).
    NoReply(String),
    /// Set the deadline (`YYYY-MM-DD`), or clear it.
    Deadline(Option<String>),
    /// Give the statement to someone (a bare address), or back to its route.
    Assign(Option<String>),
    /// Its record in the datatracker.
    Recorded(DatatrackerRecord),
    /// Open a done statement again.
    Reopen,
}

/// The statement a command acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub id: i64,
    pub tracking_id: String,
}

/// One command line of a reply, as judged: the statement it names, and what to do or why
/// nothing is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Command {
    /// The line as written (printable, clipped).
    pub line: String,
    pub target: Option<Target>,
    pub action: Result<Action, String>,
}

/// What one command did: `Ok(what changed, or that it was so already)`, `Err(why not)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandResult {
    pub line: String,
    pub tracking_id: Option<String>,
    pub outcome: Result<String, String>,
}
