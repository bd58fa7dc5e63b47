//! Loading and checking rules files: every problem is reported as `file:line:column: message`,
//! and nothing half-checked is ever returned.

use super::locate::Locator;
use super::raw::{
    RawAction, RawField, RawFile, RawMatcher, RawMeeting, RawRule, RawSend, RawStep, Short,
};
use super::vocabulary::{
    ACKNOWLEDGED, EventSpec, FieldPath, FieldSpec, FieldType, Fields, Vocabulary, acknowledged_spec,
};
use super::{
    Action, Advance, AfterSend, CaseModel, CaseUpdate, Due, ForEach, KeyMatch, Matcher,
    MeetingModel, ObligationRule, Origin, Recipient, Replan, Rule, RuleBody, RuleSet, Send,
    Services, Step,
};
use crate::calendar::OffsetUnit;
use crate::diagnostic::{Diagnostic, Diagnostics, from_yaml_error};
use crate::expr::Engine;
use crate::sources::{SourceFile, TemplateFiles};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One parsed file with what is needed to point into it.
struct Source {
    path: PathBuf,
    locator: Locator,
    raw: RawFile,
}

impl Source {
    fn at(&self, yaml_path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.path, self.locator.at(yaml_path), message)
    }

    fn key_at(&self, yaml_path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.path, self.locator.key_at(yaml_path), message)
    }
}

pub(super) fn load(
    files: &[SourceFile],
    templates: &TemplateFiles,
    services: &Services,
) -> Result<RuleSet, Diagnostics> {
    let mut problems = Vec::new();
    let mut sources = Vec::new();
    for file in files {
        match serde_yaml::from_str::<RawFile>(&file.text) {
            Ok(raw) => sources.push(Source {
                path: file.path.clone(),
                locator: Locator::new(&file.text),
                raw,
            }),
            Err(e) => problems.push(from_yaml_error(&file.path, &e)),
        }
    }

    let mut engine = Engine::new();
    if let Some((start, end)) = services.school_day {
        engine.set_school_day(start, end);
    }
    problems.extend(engine.add_templates(templates));

    let mut checker = Checker {
        services,
        vocabulary: Vocabulary::default(),
        case: CaseModel::default(),
        engine,
        problems,
    };
    checker.vocabulary(&sources);
    checker.case_model(&sources);
    let rules = checker.rules(&sources);
    checker.emit_cycles(&rules, &sources);

    if checker.problems.is_empty() {
        Ok(RuleSet {
            vocabulary: checker.vocabulary,
            case: checker.case,
            rules,
            engine: checker.engine,
            files: files.iter().map(|f| f.path.clone()).collect(),
            services: services.clone(),
        })
    } else {
        Err(Diagnostics(checker.problems))
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

struct Checker<'a> {
    services: &'a Services,
    vocabulary: Vocabulary,
    case: CaseModel,
    engine: Engine,
    problems: Vec<Diagnostic>,
}

/// What a rule's paths are checked against: the trigger event and the list it walks.
struct Scope<'s> {
    event: &'s EventSpec,
    item: Option<&'s Fields>,
}

impl<'a> Checker<'a> {
    fn vocabulary(&mut self, sources: &[Source]) {
        let mut declared_in: BTreeMap<String, PathBuf> = BTreeMap::new();
        self.vocabulary
            .events
            .insert(ACKNOWLEDGED.to_string(), acknowledged_spec());
        for src in sources {
            for (name, spec) in &src.raw.events {
                let yaml = format!("events.{name}");
                if name == ACKNOWLEDGED {
                    self.problems.push(src.key_at(
                        &yaml,
                        format!(
                            "event type `{name}` is driftwatch's own (acknowledgement links); \
                             choose another name"
                        ),
                    ));
                    continue;
                }
                if !is_name(name) {
                    self.problems.push(
                        src.key_at(&yaml, format!("event type `{name}`: use lower_snake_case")),
                    );
                }
                if let Some(first) = declared_in.get(name) {
                    self.problems.push(src.key_at(
                        &yaml,
                        format!(
                            "event type `{name}` is already declared in {}",
                            first.display()
                        ),
                    ));
                    continue;
                }
                declared_in.insert(name.clone(), src.path.clone());
                let fields = self.fields(src, &format!("{yaml}.fields"), &spec.fields);
                self.vocabulary.events.insert(
                    name.clone(),
                    EventSpec {
                        description: spec.description.clone(),
                        fields,
                    },
                );
            }
        }
    }

    fn fields(
        &mut self,
        src: &Source,
        yaml: &str,
        raw: &BTreeMap<String, Short<RawField>>,
    ) -> Fields {
        let mut out = Fields::new();
        for (name, field) in raw {
            let path = format!("{yaml}.{name}");
            let spec = match field {
                Short::Text(ty) => match FieldType::simple(ty) {
                    Some(ty) => Some(FieldSpec {
                        ty,
                        optional: false,
                        one_of: None,
                        description: None,
                    }),
                    None => {
                        self.problems.push(src.at(&path, unknown_type(ty)));
                        None
                    }
                },
                Short::Full(full) => self.full_field(src, &path, full),
            };
            if let Some(spec) = spec {
                out.insert(name.clone(), spec);
            }
        }
        out
    }

    fn full_field(&mut self, src: &Source, path: &str, full: &RawField) -> Option<FieldSpec> {
        let ty = match (full.ty.as_str(), &full.items) {
            ("list", Some(items)) => {
                FieldType::List(self.fields(src, &format!("{path}.items"), items))
            }
            ("list", None) => {
                self.problems.push(src.at(
                    &format!("{path}.type"),
                    "a list field needs `items:` with its fields",
                ));
                return None;
            }
            (other, Some(_)) => {
                self.problems.push(src.at(
                    &format!("{path}.items"),
                    format!("only a list has items, not a {other}"),
                ));
                return None;
            }
            (other, None) => match FieldType::simple(other) {
                Some(t) => t,
                None => {
                    self.problems
                        .push(src.at(&format!("{path}.type"), unknown_type(other)));
                    return None;
                }
            },
        };
        if full.one_of.is_some() && ty != FieldType::String {
            self.problems.push(src.at(
                &format!("{path}.one_of"),
                "only a string field can have one_of",
            ));
        }
        Some(FieldSpec {
            ty,
            optional: full.optional,
            one_of: full.one_of.clone(),
            description: full.description.clone(),
        })
    }

    fn event_spec(&mut self, src: &Source, yaml: &str, name: &str) -> Option<EventSpec> {
        match self.vocabulary.events.get(name) {
            Some(spec) => Some(spec.clone()),
            None => {
                let hint = closest(name, self.vocabulary.events.keys());
                self.problems
                    .push(src.at(yaml, format!("unknown event type `{name}`{hint}")));
                None
            }
        }
    }

    fn path(
        &mut self,
        src: &Source,
        yaml: &str,
        text: &str,
        scope: &Scope,
    ) -> Option<(FieldPath, FieldSpec)> {
        let checked = text.parse::<FieldPath>().and_then(|path| {
            let spec = path.type_in(scope.event, scope.item)?;
            Ok((path, spec))
        });
        checked
            .map_err(|e| self.problems.push(src.at(yaml, e)))
            .ok()
    }

    fn moment_path(
        &mut self,
        src: &Source,
        yaml: &str,
        text: &str,
        scope: &Scope,
    ) -> Option<(FieldPath, FieldSpec)> {
        let (path, spec) = self.path(src, yaml, text, scope)?;
        if !spec.ty.is_moment() {
            self.problems.push(src.at(
                yaml,
                format!("`{path}` is a {}, not a date or datetime", spec.ty.name()),
            ));
            return None;
        }
        Some((path, spec))
    }

    fn condition(
        &mut self,
        src: &Source,
        yaml: &str,
        name: &str,
        text: &Option<String>,
    ) -> Option<String> {
        let text = text.as_ref()?;
        match self.engine.add_condition(name, text) {
            Ok(()) => Some(name.to_string()),
            Err(e) => {
                self.problems
                    .push(src.at(yaml, format!("condition does not compile: {e}")));
                None
            }
        }
    }

    fn case_model(&mut self, sources: &[Source]) {
        // Roles first, so `clear:` can name a role set in another file.
        for src in sources {
            for update in src.raw.case.iter().flat_map(|c| &c.updates) {
                self.case.roles.extend(update.contacts.keys().cloned());
            }
        }
        for src in sources {
            let Some(case) = &src.raw.case else { continue };
            for (i, name) in case.opened_by.iter().enumerate() {
                if self
                    .event_spec(src, &format!("case.opened_by[{i}]"), name)
                    .is_some()
                {
                    self.case.opened_by.push(name.clone());
                }
            }
            for (i, name) in case.closed_by.iter().enumerate() {
                if self
                    .event_spec(src, &format!("case.closed_by[{i}]"), name)
                    .is_some()
                {
                    self.case.closed_by.push(name.clone());
                }
            }
            for (i, meeting) in case.meetings.iter().enumerate() {
                if let Some(m) = self.meeting_model(src, &format!("case.meetings[{i}]"), meeting) {
                    self.case.meetings.push(m);
                }
            }
            for (i, update) in case.updates.iter().enumerate() {
                let yaml = format!("case.updates[{i}]");
                let Some(spec) = self.event_spec(src, &format!("{yaml}.on"), &update.on) else {
                    continue;
                };
                let scope = Scope {
                    event: &spec,
                    item: None,
                };
                let mut contacts = Vec::new();
                for (role, text) in &update.contacts {
                    let at = format!("{yaml}.contacts.{role}");
                    if self.services.roles.contains(role) {
                        self.problems.push(src.key_at(
                            &at,
                            format!("`{role}` is a service role in the config; a case contact needs another name"),
                        ));
                    }
                    if let Some((path, field)) = self.path(src, &at, text, &scope) {
                        if field.ty == FieldType::Contact {
                            contacts.push((role.clone(), path));
                        } else {
                            self.problems.push(src.at(
                                &at,
                                format!("`{path}` is a {}, not a contact", field.ty.name()),
                            ));
                        }
                    }
                }
                let mut facts = Vec::new();
                for (fact, text) in &update.facts {
                    if let Some((path, _)) =
                        self.path(src, &format!("{yaml}.facts.{fact}"), text, &scope)
                    {
                        facts.push((fact.clone(), path));
                    }
                }
                for (j, role) in update.clear.iter().enumerate() {
                    if !self.case.roles.contains(role) {
                        self.problems.push(src.at(
                            &format!("{yaml}.clear[{j}]"),
                            format!("`{role}` is not a case contact role"),
                        ));
                    }
                }
                self.case.updates.push(CaseUpdate {
                    on: update.on.clone(),
                    contacts,
                    facts,
                    clear: update.clear.clone(),
                });
            }
        }
    }

    /// A kind of meeting: its events exist, each carries the key, and booking and moving carry
    /// the time.
    fn meeting_model(
        &mut self,
        src: &Source,
        yaml: &str,
        raw: &RawMeeting,
    ) -> Option<MeetingModel> {
        let before = self.problems.len();
        let key: FieldPath = match raw.key.parse() {
            Ok(p) => p,
            Err(e) => {
                self.problems.push(src.at(&format!("{yaml}.key"), e));
                return None;
            }
        };
        let at: FieldPath = match raw.at.parse() {
            Ok(p) => p,
            Err(e) => {
                self.problems.push(src.at(&format!("{yaml}.at"), e));
                return None;
            }
        };
        let lists = [
            ("moved_by", &raw.moved_by),
            ("cancelled_by", &raw.cancelled_by),
            ("held_by", &raw.held_by),
        ];
        let mut events = vec![(format!("{yaml}.booked_by"), raw.booked_by.as_str(), true)];
        for (field, list) in lists {
            for (j, e) in list.iter().enumerate() {
                events.push((
                    format!("{yaml}.{field}[{j}]"),
                    e.as_str(),
                    field == "moved_by",
                ));
            }
        }
        for (at_yaml, event, timed) in events {
            let Some(spec) = self.event_spec(src, &at_yaml, event) else {
                continue;
            };
            let scope = Scope {
                event: &spec,
                item: None,
            };
            if let Ok(found) = key.type_in(scope.event, None) {
                if !matches!(found.ty, FieldType::String | FieldType::Number) {
                    self.problems.push(src.at(
                        &format!("{yaml}.key"),
                        format!("a meeting's key must be a string or number field, `{key}` is a {} in `{event}`", found.ty.name()),
                    ));
                }
            } else {
                self.problems.push(src.at(
                    &at_yaml,
                    format!("`{event}` does not carry the meeting's key `{key}`"),
                ));
            }
            if timed {
                match at.type_in(scope.event, None) {
                    Ok(found) if found.ty == FieldType::Datetime => {}
                    _ => self.problems.push(src.at(
                        &at_yaml,
                        format!("`{event}` does not carry the meeting's time `{at}` as a datetime"),
                    )),
                }
            }
        }
        (self.problems.len() == before).then(|| MeetingModel {
            booked_by: raw.booked_by.clone(),
            key,
            at,
            moved_by: raw.moved_by.clone(),
            cancelled_by: raw.cancelled_by.clone(),
            held_by: raw.held_by.clone(),
        })
    }

    /// The fields a meeting's data has: those of every event that books one (for `meeting:`
    /// and `for_each: meetings`).
    fn meeting_fields(&self) -> Fields {
        let mut fields = Fields::new();
        for m in &self.case.meetings {
            if let Some(spec) = self.vocabulary.events.get(&m.booked_by) {
                for (name, f) in &spec.fields {
                    fields.entry(name.clone()).or_insert_with(|| f.clone());
                }
            }
        }
        fields
    }

    fn rules(&mut self, sources: &[Source]) -> Vec<Rule> {
        let mut rules = Vec::new();
        let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
        for src in sources {
            for (i, raw) in src.raw.rules.iter().enumerate() {
                let yaml = format!("rules[{i}]");
                if !is_name(&raw.id) {
                    self.problems.push(src.at(
                        &format!("{yaml}.id"),
                        format!("rule id `{}`: use lower_snake_case", raw.id),
                    ));
                }
                if let Some(first) = seen.get(&raw.id) {
                    self.problems.push(src.at(
                        &format!("{yaml}.id"),
                        format!(
                            "rule id `{}` is already used in {}",
                            raw.id,
                            first.display()
                        ),
                    ));
                    continue;
                }
                seen.insert(raw.id.clone(), src.path.clone());
                if let Some(rule) = self.rule(src, &yaml, raw) {
                    rules.push(rule);
                }
            }
        }
        rules
    }

    fn rule(&mut self, src: &Source, yaml: &str, raw: &RawRule) -> Option<Rule> {
        let before = self.problems.len();
        let trigger = self.event_spec(src, &format!("{yaml}.on"), &raw.on)?;
        let trigger = trigger.clone();
        let when = self.condition(src, &format!("{yaml}.when"), &raw.id, &raw.when);

        let mut item_fields = None;
        let mut for_each = None;
        let mut meeting = None;
        let mut trigger = trigger;
        if let Some(text) = &raw.meeting {
            let scope = Scope {
                event: &trigger,
                item: None,
            };
            let at = format!("{yaml}.meeting");
            if self.case.meetings.is_empty() {
                self.problems.push(src.at(
                    &at,
                    "`meeting:` needs the meetings a case has, under `case.meetings`",
                ));
            } else if let Some((path, spec)) = self.path(src, &at, text, &scope) {
                if matches!(spec.ty, FieldType::String | FieldType::Number) {
                    meeting = Some(path);
                } else {
                    self.problems.push(src.at(
                        &at,
                        format!(
                            "a meeting's id is a string or number, `{path}` is a {}",
                            spec.ty.name()
                        ),
                    ));
                }
            }
        }
        if let Some(text) = &raw.for_each {
            let at = format!("{yaml}.for_each");
            if text.trim() == "meetings" {
                if self.case.meetings.is_empty() {
                    self.problems.push(src.at(
                        &at,
                        "`for_each: meetings` needs the meetings a case has, under `case.meetings`",
                    ));
                } else {
                    item_fields = Some(self.meeting_fields());
                    for_each = Some(ForEach::Meetings);
                }
            } else {
                let scope = Scope {
                    event: &trigger,
                    item: None,
                };
                if let Some((path, spec)) = self.path(src, &at, text, &scope) {
                    match spec.ty {
                        FieldType::List(fields) => {
                            item_fields = Some(fields);
                            for_each = Some(ForEach::List(path));
                        }
                        other => self.problems.push(src.at(
                            &at,
                            format!("`{path}` is a {}, not a list (or `meetings`)", other.name()),
                        )),
                    }
                }
            }
        }
        if meeting.is_some() || matches!(for_each, Some(ForEach::Meetings)) {
            // The meeting's data lies under the event's own.
            let mut fields = self.meeting_fields();
            for (name, f) in &trigger.fields {
                fields.insert(name.clone(), f.clone());
            }
            trigger.fields = fields;
        }
        let scope = Scope {
            event: &trigger,
            item: item_fields.as_ref(),
        };

        let mut key = None;
        if let Some(text) = &raw.key
            && let Some((path, spec)) = self.path(src, &format!("{yaml}.key"), text, &scope)
        {
            if matches!(spec.ty, FieldType::String | FieldType::Number) {
                key = Some(path);
            } else {
                self.problems.push(src.at(
                    &format!("{yaml}.key"),
                    format!(
                        "a key must be a string or number field, `{path}` is a {}",
                        spec.ty.name()
                    ),
                ));
            }
        }

        let body = match (&raw.due, &raw.notice) {
            (Some(_), Some(_)) => {
                self.problems.push(src.at(
                    yaml,
                    "a rule has either `due:` (an obligation) or `notice:`, not both",
                ));
                return None;
            }
            (None, None) => {
                self.problems.push(src.at(yaml, "a rule needs `due:` (an obligation with a deadline) or `notice:` (an immediate message)"));
                return None;
            }
            (None, Some(notice)) => {
                let obligation_only = [
                    ("met_by", raw.met_by.is_empty()),
                    ("cancelled_by", raw.cancelled_by.is_empty()),
                    ("replanned_by", raw.replanned_by.is_empty()),
                    ("ended_by", raw.ended_by.is_empty()),
                    ("advanced_by", raw.advanced_by.is_empty()),
                    ("reminders", raw.reminders.is_empty()),
                    ("escalations", raw.escalations.is_empty()),
                    ("at_deadline", raw.at_deadline.is_empty()),
                ];
                for (field, empty) in obligation_only {
                    if !empty {
                        self.problems.push(src.key_at(
                            &format!("{yaml}.{field}"),
                            format!("`{field}` needs a deadline: a notice rule has none"),
                        ));
                    }
                }
                RuleBody::Notice(self.send(
                    src,
                    &format!("{yaml}.notice"),
                    notice,
                    &scope,
                    false,
                )?)
            }
            (Some(due), None) => RuleBody::Obligation(Box::new(self.obligation(
                src,
                yaml,
                raw,
                due,
                &scope,
                key.as_ref(),
            )?)),
        };

        (self.problems.len() == before).then(|| Rule {
            id: raw.id.clone(),
            title: raw.title.clone(),
            source: raw.source.clone(),
            description: raw.description.clone(),
            on: raw.on.clone(),
            when,
            for_each,
            key,
            meeting,
            body,
            delivery: raw.delivery,
            origin: Origin {
                file: src.path.clone(),
                position: src.locator.at(yaml),
            },
        })
    }

    fn obligation(
        &mut self,
        src: &Source,
        yaml: &str,
        raw: &RawRule,
        due: &super::raw::RawDue,
        scope: &Scope,
        key: Option<&FieldPath>,
    ) -> Option<ObligationRule> {
        let (from, from_spec) =
            self.moment_path(src, &format!("{yaml}.due.from"), &due.from, scope)?;
        if due.offset.unit == OffsetUnit::Hours && from_spec.ty != FieldType::Datetime {
            self.problems.push(src.at(
                &format!("{yaml}.due.offset"),
                format!("an offset in hours needs a datetime anchor; `{from}` is a date"),
            ));
        }
        let rule_id = &raw.id;
        let matchers = |this: &mut Self, field: &str, list: &[Short<RawMatcher>]| -> Vec<Matcher> {
            list.iter()
                .enumerate()
                .filter_map(|(j, m)| {
                    let at = format!("{yaml}.{field}[{j}]");
                    let full = match m {
                        Short::Text(event) => RawMatcher {
                            event: event.clone(),
                            key: None,
                            at: None,
                            when: None,
                            earlier: false,
                        },
                        Short::Full(f) => RawMatcher {
                            event: f.event.clone(),
                            key: f.key.clone(),
                            at: f.at.clone(),
                            when: f.when.clone(),
                            earlier: f.earlier,
                        },
                    };
                    this.matcher(src, &at, &format!("{rule_id}.{field}[{j}]"), &full, key)
                })
                .collect()
        };
        let met_by = matchers(self, "met_by", &raw.met_by);
        let cancelled_by = matchers(self, "cancelled_by", &raw.cancelled_by);
        let ended_by = matchers(self, "ended_by", &raw.ended_by);
        for (field, list) in [
            ("cancelled_by", &raw.cancelled_by),
            ("ended_by", &raw.ended_by),
        ] {
            for (j, m) in list.iter().enumerate() {
                if let Short::Full(RawMatcher { earlier: true, .. }) = m {
                    self.problems.push(src.at(
                        &format!("{yaml}.{field}[{j}].earlier"),
                        "`earlier` lets an event from before the obligation opened meet it; it belongs under `met_by`",
                    ));
                }
            }
        }
        for (j, m) in raw.cancelled_by.iter().enumerate() {
            if let Short::Full(RawMatcher { at: Some(_), .. }) = m {
                self.problems.push(src.at(
                    &format!("{yaml}.cancelled_by[{j}].at"),
                    "`at` says when an obligation was met; it belongs under `met_by`",
                ));
            }
        }
        let mut replanned_by = Vec::new();
        for (j, r) in raw.replanned_by.iter().enumerate() {
            let at = format!("{yaml}.replanned_by[{j}]");
            let found = self.matcher_and_path(
                src,
                (&at, &format!("{rule_id}.replanned_by[{j}]")),
                (&r.event, &r.key, &r.when),
                ("from", &r.from),
                key,
            );
            if let Some((matcher, from, spec)) = found {
                if spec.ty.is_moment() {
                    replanned_by.push(Replan { matcher, from });
                } else {
                    self.problems.push(src.at(
                        &format!("{at}.from"),
                        format!("`{from}` is a {}, not a date or datetime", spec.ty.name()),
                    ));
                }
            }
        }

        let mut advanced_by = Vec::new();
        for (j, a) in raw.advanced_by.iter().enumerate() {
            let at = format!("{yaml}.advanced_by[{j}]");
            let found = self.matcher_and_path(
                src,
                (&at, &format!("{rule_id}.advanced_by[{j}]")),
                (&a.event, &a.key, &a.when),
                ("to", &a.to),
                key,
            );
            if let Some((matcher, to, spec)) = found {
                if matches!(spec.ty, FieldType::String | FieldType::Number) {
                    advanced_by.push(Advance { matcher, to });
                } else {
                    self.problems.push(src.at(
                        &format!("{at}.to"),
                        format!(
                            "the stage is a number or a step id, `{to}` is a {}",
                            spec.ty.name()
                        ),
                    ));
                }
            }
        }
        if !raw.advanced_by.is_empty() && raw.escalations.is_empty() {
            self.problems.push(src.key_at(
                &format!("{yaml}.advanced_by"),
                "`advanced_by` moves the escalation ladder, but the rule has no `escalations`",
            ));
        }

        let reminders = self.steps(
            src,
            &format!("{yaml}.reminders"),
            "reminder",
            &raw.reminders,
            scope,
        );
        let escalations = self.steps(
            src,
            &format!("{yaml}.escalations"),
            "escalation",
            &raw.escalations,
            scope,
        );
        let at_deadline =
            self.actions(src, &format!("{yaml}.at_deadline"), &raw.at_deadline, scope);
        if !at_deadline.is_empty() && !escalations.is_empty() {
            self.problems.push(src.key_at(
                &format!("{yaml}.escalations"),
                "escalations never fire here: driftwatch's own actions at the deadline meet the obligation",
            ));
        }
        Some(ObligationRule {
            due: Due {
                from,
                offset: due.offset,
            },
            met_by,
            cancelled_by,
            replanned_by,
            ended_by,
            advanced_by,
            reminders,
            escalations,
            at_deadline,
        })
    }

    /// A matcher that also names a field of its own event (`from:` of `replanned_by`, `to:` of
    /// `advanced_by`): the matcher, the path and the field's type. `names` is (yaml position,
    /// condition name); `raw` is (event, key, when); `field` is (its key, the path written).
    fn matcher_and_path(
        &mut self,
        src: &Source,
        names: (&str, &str),
        raw: (&String, &Option<String>, &Option<String>),
        field: (&str, &str),
        rule_key: Option<&FieldPath>,
    ) -> Option<(Matcher, FieldPath, FieldSpec)> {
        let (yaml, name) = names;
        let m = RawMatcher {
            event: raw.0.clone(),
            key: raw.1.clone(),
            at: None,
            when: raw.2.clone(),
            earlier: false,
        };
        let matcher = self.matcher(src, yaml, name, &m, rule_key)?;
        let spec = self.vocabulary.events.get(raw.0).cloned()?;
        let scope = Scope {
            event: &spec,
            item: None,
        };
        let (path, found) = self.path(src, &format!("{yaml}.{}", field.0), field.1, &scope)?;
        Some((matcher, path, found))
    }

    fn matcher(
        &mut self,
        src: &Source,
        yaml: &str,
        name: &str,
        raw: &RawMatcher,
        rule_key: Option<&FieldPath>,
    ) -> Option<Matcher> {
        let spec = self.event_spec(src, &format!("{yaml}.event"), &raw.event)?;
        let scope = Scope {
            event: &spec,
            item: None,
        };
        let key = match (raw.key.as_deref(), rule_key) {
            (Some("any"), _) | (None, None) => KeyMatch::Any,
            (Some(_), None) => {
                self.problems.push(src.at(
                    &format!("{yaml}.key"),
                    "the rule has no `key`, so this event finds every open obligation of the rule; remove this `key`",
                ));
                return None;
            }

            (Some(text), _) => {
                KeyMatch::Path(self.path(src, &format!("{yaml}.key"), text, &scope)?.0)
            }
            (None, Some(rule_key)) => match rule_key.type_in(&spec, None) {
                Ok(_) if rule_key.root == super::vocabulary::Root::Data => {
                    KeyMatch::Path(rule_key.clone())
                }
                _ => {
                    self.problems.push(src.at(
                        yaml,
                        format!(
                            "`{}` does not carry the rule's key `{rule_key}`: add `key: data.FIELD` naming the field that does, or `key: any`",
                            raw.event
                        ),
                    ));
                    return None;
                }
            },
        };
        let at = match &raw.at {
            Some(text) => Some(
                self.moment_path(src, &format!("{yaml}.at"), text, &scope)?
                    .0,
            ),
            None => None,
        };
        let when = self.condition(src, &format!("{yaml}.when"), name, &raw.when);
        Some(Matcher {
            event: raw.event.clone(),
            key,
            at,
            when,
            earlier: raw.earlier,
        })
    }

    fn steps(
        &mut self,
        src: &Source,
        yaml: &str,
        kind: &str,
        raw: &[RawStep],
        scope: &Scope,
    ) -> Vec<Step> {
        let mut ids = BTreeSet::new();
        let mut steps = Vec::new();
        for (j, step) in raw.iter().enumerate() {
            let at = format!("{yaml}[{j}]");
            let offset = step.offset;
            let bad_offset = match kind {
                "reminder" if offset.amount > 0 => {
                    Some("a reminder comes before the deadline: its offset is zero or negative")
                }
                "escalation" if offset.amount <= 0 => {
                    Some("an escalation comes after the deadline: its offset is positive")
                }
                _ if !offset.is_day_based() => Some(
                    "reminders and escalations are offset in working days, days, weeks or months",
                ),
                _ => None,
            };
            if let Some(msg) = bad_offset {
                self.problems.push(src.at(&format!("{at}.offset"), msg));
            }
            let id = step
                .id
                .clone()
                .unwrap_or_else(|| format!("{kind} {offset}"));
            if !ids.insert(id.clone()) {
                self.problems
                    .push(src.at(&at, format!("two steps are both `{id}`: give one an `id:`")));
            }
            let send = RawSend {
                to: step.to.clone(),
                template: step.template.clone(),
                urgent: step.urgent,
                ..RawSend::default()
            };
            if let Some(send) = self.send(src, &at, &send, scope, false) {
                steps.push(Step {
                    id,
                    title: step.title.clone(),
                    offset,
                    send,
                });
            }
        }
        steps
    }

    fn actions(
        &mut self,
        src: &Source,
        yaml: &str,
        raw: &[RawAction],
        scope: &Scope,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        for (j, action) in raw.iter().enumerate() {
            let at = format!("{yaml}[{j}]");
            match (&action.send, &action.emit) {
                (Some(send), None) => {
                    if let Some(s) = self.send(src, &format!("{at}.send"), send, scope, true) {
                        actions.push(Action::Send(s));
                    }
                }
                (None, Some(emit)) => {
                    let yaml_emit = format!("{at}.emit");
                    let Some(target) =
                        self.event_spec(src, &format!("{yaml_emit}.event"), &emit.event)
                    else {
                        continue;
                    };
                    let mut data = Vec::new();
                    for (field, text) in &emit.data {
                        let fat = format!("{yaml_emit}.data.{field}");
                        let Some(want) = target.fields.get(field) else {
                            self.problems.push(
                                src.key_at(
                                    &fat,
                                    format!("`{}` has no field `{field}`", emit.event),
                                ),
                            );
                            continue;
                        };
                        if let Some((path, got)) = self.path(src, &fat, text, scope) {
                            if got.ty.name() != want.ty.name() {
                                self.problems.push(src.at(
                                    &fat,
                                    format!(
                                        "`{path}` is a {}, but `{}.{field}` is a {}",
                                        got.ty.name(),
                                        emit.event,
                                        want.ty.name()
                                    ),
                                ));
                            }
                            data.push((field.clone(), path));
                        }
                    }
                    for (field, spec) in &target.fields {
                        if !spec.optional && !emit.data.contains_key(field) {
                            self.problems.push(src.at(
                                &format!("{yaml_emit}.data"),
                                format!("`{}` requires `{field}`", emit.event),
                            ));
                        }
                    }
                    actions.push(Action::Emit {
                        event: emit.event.clone(),
                        data,
                    });
                }
                _ => self.problems.push(src.at(
                    &at,
                    "each action at the deadline is either `send:` or `emit:`",
                )),
            }
        }
        actions
    }

    /// A send's recipients and template; `at_deadline` says whether it is a deadline action,
    /// the only kind that may say what happens after it went.
    fn send(
        &mut self,
        src: &Source,
        yaml: &str,
        raw: &RawSend,
        scope: &Scope,
        at_deadline: bool,
    ) -> Option<Send> {
        let before = self.problems.len();
        let mut after = AfterSend::default();
        let later = [
            ("if_moved", raw.if_moved.is_some()),
            ("if_cancelled", raw.if_cancelled.is_some()),
            ("if_nobody", raw.if_nobody.is_some()),
        ];
        for (field, given) in later {
            if given && !at_deadline {
                self.problems.push(src.key_at(
                    &format!("{yaml}.{field}"),
                    format!("`{field}` belongs to a send at the deadline (`at_deadline`)"),
                ));
            }
        }
        for (field, template) in [
            ("if_moved", &raw.if_moved),
            ("if_cancelled", &raw.if_cancelled),
        ] {
            if let Some(t) = template {
                self.template_exists(src, &format!("{yaml}.{field}"), t);
            }
        }
        after.if_moved = raw.if_moved.clone();
        after.if_cancelled = raw.if_cancelled.clone();
        if let Some(nobody) = &raw.if_nobody {
            let fallback = RawSend {
                to: nobody.to.clone(),
                template: nobody.template.clone(),
                ..RawSend::default()
            };
            after.if_nobody = self
                .send(src, &format!("{yaml}.if_nobody"), &fallback, scope, false)
                .map(Box::new);
        }
        if raw.to.is_empty() {
            self.problems
                .push(src.key_at(&format!("{yaml}.to"), "`to:` names nobody"));
        }
        let mut to = Vec::new();
        for (k, text) in raw.to.iter().enumerate() {
            let at = format!("{yaml}.to[{k}]");
            if let Some(name) = text.strip_prefix("webhook:") {
                if self.services.webhooks.contains(name) {
                    to.push(Recipient::Webhook(name.to_string()));
                } else {
                    let hint = closest(name, self.services.webhooks.iter());
                    self.problems.push(src.at(&at, format!("unknown webhook `{name}`: configure it under `webhooks:` in the config{hint}")));
                }
            } else if let Some(path) = text.strip_prefix("list:") {
                if let Some((path, spec)) = self.path(src, &at, path, scope) {
                    if matches!(spec.ty, FieldType::Contact | FieldType::Contacts) {
                        to.push(Recipient::List(path));
                    } else {
                        self.problems.push(src.at(
                            &at,
                            format!(
                                "`{path}` is a {}, not a contact or contacts",
                                spec.ty.name()
                            ),
                        ));
                    }
                }
            } else if self.case.roles.contains(text) || self.services.roles.contains(text) {
                to.push(Recipient::Role(text.clone()));
            } else {
                let hint = closest(
                    text,
                    self.case.roles.iter().chain(self.services.roles.iter()),
                );
                self.problems.push(src.at(
                    &at,
                    format!("unknown role `{text}`: neither a case contact set by `case.updates` nor a role in the config{hint}"),
                ));
            }
        }
        self.template_exists(src, &format!("{yaml}.template"), &raw.template);
        (self.problems.len() == before).then(|| Send {
            to,
            template: raw.template.clone(),
            urgent: raw.urgent,
            after,
        })
    }

    fn template_exists(&mut self, src: &Source, yaml: &str, template: &str) {
        if !self.engine.has_template(template) {
            let hint = closest(template, self.engine.template_names());
            self.problems.push(src.at(
                yaml,
                format!(
                    "unknown template `{template}`: no folder of that name in the templates folder{hint}"
                ),
            ));
        }
    }

    /// A rule whose derived event leads back to itself would never stop.
    fn emit_cycles(&mut self, rules: &[Rule], sources: &[Source]) {
        let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for rule in rules {
            for action in rule
                .obligation()
                .map(|o| o.at_deadline.as_slice())
                .unwrap_or(&[])
            {
                if let Action::Emit { event, .. } = action {
                    edges
                        .entry(rule.on.as_str())
                        .or_default()
                        .insert(event.as_str());
                }
            }
        }
        for rule in rules {
            let mut stack: Vec<&str> = edges
                .get(rule.on.as_str())
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            let mut seen = BTreeSet::new();
            while let Some(next) = stack.pop() {
                if next == rule.on {
                    let file = sources
                        .iter()
                        .find(|s| s.path == rule.origin.file)
                        .map(|s| s.path.as_path())
                        .unwrap_or(Path::new("rules"));
                    self.problems.push(Diagnostic::new(file, rule.origin.position, format!("rule `{}`: the events it derives lead back to `{}`, which would never stop", rule.id, rule.on)));
                    break;
                }
                if seen.insert(next) {
                    stack.extend(edges.get(next).into_iter().flatten().copied());
                }
            }
        }
    }
}

fn unknown_type(ty: &str) -> String {
    format!(
        "unknown field type `{ty}`: use string, date, datetime, boolean, number, contact, contacts or list"
    )
}

/// ", did you mean `x`?" when a known name is one or two edits away.
pub fn closest<'n>(
    name: &str,
    known: impl Iterator<Item = &'n (impl AsRef<str> + ?Sized + 'n)>,
) -> String {
    known
        .map(|k| k.as_ref())
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!(", did you mean `{k}`?"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
