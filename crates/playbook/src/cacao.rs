//! OASIS CACAO Security Playbooks v2.0 export and import.
//!
//! Every step becomes an `action` step with one `manual` command (the guidance in Japanese and
//! English) run by an `individual` agent ("incident lead"), chained start → actions (playbook
//! order) → end with `on_completion`. What CACAO has no place for (phase, deadlines, titles in
//! both languages, evidence, conditions, rule references, variable types) travels in one
//! `extension-definition` ([`EXTENSION_NAME`]), so [`import_cacao`] gives back the same
//! playbook. Conditions are kept in the extension (`applies_if`) rather than as
//! `if-condition` steps, because CACAO conditions are STIX-pattern strings that no runner here
//! evaluates.
//!
//! Ids are deterministic: UUID-shaped values derived from SHA-256 of the CACAO namespace
//! (`aa7caf3a-d55a-4e9a-b34e-056215fba56a`) and a name (`playbook id` / `step id`), with the
//! version nibble 5 and RFC 4122 variant. (UUIDv5 proper uses SHA-1; the CACAO schema only
//! checks the shape. CACAO prose asks for UUIDv4 step ids; we choose reproducible exports over
//! that recommendation.)

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::format::{self, Anchor, Playbook, Step};

/// Name of the extension definition carrying ecir's step metadata.
pub const EXTENSION_NAME: &str = "ecir-playbook-metadata";
const NAMESPACE: [u8; 16] = [
    0xaa, 0x7c, 0xaf, 0x3a, 0xd5, 0x5a, 0x4e, 0x9a, 0xb3, 0x4e, 0x05, 0x62, 0x15, 0xfb, 0xa5, 0x6a,
];

/// A deterministic UUID (version nibble 5) for `name`.
pub fn uuid_for(name: &str) -> String {
    let mut h = Sha256::new();
    h.update(NAMESPACE);
    h.update(name.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct DeadlineExt {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    when: Option<String>,
    anchor: String,
    offset: i64,
    unit: String,
    kind: String,
    roll_forward: bool,
    rule: String,
}

#[derive(Serialize, Deserialize)]
struct TextExt {
    ja: String,
    en: String,
}

#[derive(Serialize, Deserialize)]
struct StepExt {
    step_id: String,
    phase: String,
    title_ja: String,
    title_en: String,
    text_ja: String,
    text_en: String,
    after: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    applies_if: Option<String>,
    deadlines: Vec<DeadlineExt>,
    evidence: Vec<TextExt>,
    rule_refs: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct VarExt {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    ja: String,
    en: String,
}

#[derive(Serialize, Deserialize)]
struct PlaybookExt {
    playbook_id: String,
    version: String,
    updated: String,
    title_ja: String,
    title_en: String,
    summary_ja: String,
    summary_en: String,
    variables: Vec<VarExt>,
}

fn step_ext(s: &Step) -> StepExt {
    StepExt {
        step_id: s.id.clone(),
        phase: s.phase.as_str().to_string(),
        title_ja: s.title.ja.clone(),
        title_en: s.title.en.clone(),
        text_ja: s.text.ja.clone(),
        text_en: s.text.en.clone(),
        after: s.after.clone(),
        applies_if: s.when.clone(),
        deadlines: s
            .deadlines
            .iter()
            .map(|d| DeadlineExt {
                when: d.when.clone(),
                anchor: d.anchor.to_string(),
                offset: d.offset,
                unit: d.unit.as_str().to_string(),
                kind: match d.kind {
                    format::DeadlineKind::Soft => "soft".into(),
                    format::DeadlineKind::Hard => "hard".into(),
                },
                roll_forward: d.roll_forward,
                rule: d.rule.clone(),
            })
            .collect(),
        evidence: s
            .evidence
            .iter()
            .map(|e| TextExt {
                ja: e.ja.clone(),
                en: e.en.clone(),
            })
            .collect(),
        rule_refs: s.rules.clone(),
    }
}

/// The playbook as a CACAO 2.0 JSON document (deterministic for the same playbook).
pub fn export_cacao(pb: &Playbook) -> Value {
    let ext_id = format!(
        "extension-definition--{}",
        uuid_for("ecir:extension:playbook-metadata:1")
    );
    let identity = format!("identity--{}", uuid_for("ecir:identity"));
    let agent = format!(
        "individual--{}",
        uuid_for(&format!("ecir:agent:{}:incident-lead", pb.id))
    );
    let start = format!("start--{}", uuid_for(&format!("{}:start", pb.id)));
    let end = format!("end--{}", uuid_for(&format!("{}:end", pb.id)));
    let action_id = |s: &Step| format!("action--{}", uuid_for(&format!("{}:{}", pb.id, s.id)));
    let ts = format!("{}T00:00:00.000Z", pb.updated);

    let mut workflow = Map::new();
    let first = pb
        .steps
        .first()
        .map(action_id)
        .unwrap_or_else(|| end.clone());
    workflow.insert(
        start.clone(),
        json!({"type": "start", "on_completion": first}),
    );
    for (i, s) in pb.steps.iter().enumerate() {
        let next = pb
            .steps
            .get(i + 1)
            .map(action_id)
            .unwrap_or_else(|| end.clone());
        let mut ext = Map::new();
        ext.insert(
            ext_id.clone(),
            serde_json::to_value(step_ext(s)).expect("serializable"),
        );
        workflow.insert(
            action_id(s),
            json!({
                "type": "action",
                "name": format!("{} {} / {}", s.id, s.title.ja, s.title.en),
                "description": s.text.en,
                "commands": [{
                    "type": "manual",
                    "command": format!("{}\n\n{}", s.text.ja, s.text.en),
                }],
                "agent": agent,
                "on_completion": next,
                "step_extensions": Value::Object(ext),
            }),
        );
    }
    workflow.insert(end.clone(), json!({"type": "end"}));

    let mut vars = Map::new();
    for v in &pb.variables {
        let ty = match v.kind {
            format::VarType::Bool => "bool",
            format::VarType::Int => "integer",
            format::VarType::String | format::VarType::Time => "string",
        };
        vars.insert(
            format!("__{}__", v.name),
            json!({"type": ty, "description": v.description.en, "external": true}),
        );
    }
    let pext = PlaybookExt {
        playbook_id: pb.id.clone(),
        version: pb.version.clone(),
        updated: pb.updated.clone(),
        title_ja: pb.title.ja.clone(),
        title_en: pb.title.en.clone(),
        summary_ja: pb.summary.ja.clone(),
        summary_en: pb.summary.en.clone(),
        variables: pb
            .variables
            .iter()
            .map(|v| VarExt {
                name: v.name.clone(),
                kind: v.kind.as_str().to_string(),
                ja: v.description.ja.clone(),
                en: v.description.en.clone(),
            })
            .collect(),
    };
    let mut doc = json!({
        "type": "playbook",
        "spec_version": "cacao-2.0",
        "id": format!("playbook--{}", uuid_for(&format!("ecir:playbook:{}", pb.id))),
        "name": format!("{} / {}", pb.title.ja, pb.title.en),
        "description": pb.summary.en,
        "created_by": identity,
        "created": ts,
        "modified": ts,
        "labels": ["ecir", format!("ecir-playbook:{}", pb.id)],
        "playbook_processing_summary": {"manual_playbook": true, "extensions": true},
        "workflow_start": start,
        "workflow": Value::Object(workflow),
        "agent_definitions": {
            agent.clone(): {"type": "individual", "name": "インシデント責任者 / Incident lead"}
        },
        "extension_definitions": {
            ext_id.clone(): {
                "type": "extension-definition",
                "name": EXTENSION_NAME,
                "description": "ecir step metadata: phase, deadlines (anchor, offset, unit, soft/hard, rule), titles and texts in Japanese and English, evidence to keep, applicability condition, rule references.",
                "created_by": identity,
                "schema": "https://github.com/ecir/ecir/blob/main/playbooks/README.md#cacao-extension",
                "version": "1.0.0"
            }
        },
        "playbook_extensions": { ext_id.clone(): serde_json::to_value(pext).expect("serializable") },
    });
    if !vars.is_empty() {
        doc["playbook_variables"] = Value::Object(vars);
    }
    doc
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn toml_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", items.join(", "))
}

/// Renders a playbook in the TOML format (as `playbook import` writes it).
pub fn to_toml(pb: &Playbook) -> String {
    let mut o = String::new();
    let kv = |o: &mut String, k: &str, v: &str| o.push_str(&format!("{k} = {}\n", toml_str(v)));
    kv(&mut o, "id", &pb.id);
    kv(&mut o, "version", &pb.version);
    kv(&mut o, "updated", &pb.updated);
    kv(&mut o, "title_ja", &pb.title.ja);
    kv(&mut o, "title_en", &pb.title.en);
    if !pb.summary.ja.is_empty() {
        kv(&mut o, "summary_ja", &pb.summary.ja);
    }
    if !pb.summary.en.is_empty() {
        kv(&mut o, "summary_en", &pb.summary.en);
    }
    for v in &pb.variables {
        o.push_str("\n[[variables]]\n");
        kv(&mut o, "name", &v.name);
        kv(&mut o, "type", v.kind.as_str());
        kv(&mut o, "ja", &v.description.ja);
        kv(&mut o, "en", &v.description.en);
    }
    for s in &pb.steps {
        o.push_str("\n[[steps]]\n");
        kv(&mut o, "id", &s.id);
        kv(&mut o, "phase", s.phase.as_str());
        kv(&mut o, "title_ja", &s.title.ja);
        kv(&mut o, "title_en", &s.title.en);
        kv(&mut o, "text_ja", &s.text.ja);
        kv(&mut o, "text_en", &s.text.en);
        if !s.after.is_empty() {
            o.push_str(&format!("after = {}\n", toml_list(&s.after)));
        }
        if let Some(w) = &s.when {
            kv(&mut o, "when", w);
        }
        if !s.rules.is_empty() {
            o.push_str(&format!("rules = {}\n", toml_list(&s.rules)));
        }
        if !s.evidence.is_empty() {
            let ja: Vec<String> = s.evidence.iter().map(|e| e.ja.clone()).collect();
            let en: Vec<String> = s.evidence.iter().map(|e| e.en.clone()).collect();
            o.push_str(&format!(
                "evidence_ja = {}\nevidence_en = {}\n",
                toml_list(&ja),
                toml_list(&en)
            ));
        }
        for d in &s.deadlines {
            o.push_str("[[steps.deadlines]]\n");
            if let Some(w) = &d.when {
                kv(&mut o, "when", w);
            }
            kv(&mut o, "anchor", &d.anchor.to_string());
            o.push_str(&format!("offset = {}\n", d.offset));
            kv(&mut o, "unit", d.unit.as_str());
            kv(
                &mut o,
                "kind",
                if d.kind == format::DeadlineKind::Hard {
                    "hard"
                } else {
                    "soft"
                },
            );
            if d.roll_forward {
                o.push_str("roll_forward = true\n");
            }
            kv(&mut o, "rule", &d.rule);
        }
    }
    o
}

fn err(m: impl Into<String>) -> Error {
    Error::Cacao(m.into())
}

/// Reads a CACAO 2.0 playbook exported by [`export_cacao`] back into a playbook. Returns the
/// playbook and its TOML text; the result is linted like any playbook file.
pub fn import_cacao(json_text: &str) -> Result<(Playbook, String), Error> {
    let doc: Value = serde_json::from_str(json_text).map_err(|e| err(format!("not JSON: {e}")))?;
    if doc.get("type").and_then(Value::as_str) != Some("playbook") {
        return Err(err("`type` is not \"playbook\""));
    }
    if doc.get("spec_version").and_then(Value::as_str) != Some("cacao-2.0") {
        return Err(err("`spec_version` is not \"cacao-2.0\""));
    }
    let ext_id = doc
        .get("extension_definitions")
        .and_then(Value::as_object)
        .and_then(|m| {
            m.iter()
                .find(|(_, v)| v.get("name").and_then(Value::as_str) == Some(EXTENSION_NAME))
                .map(|(k, _)| k.clone())
        })
        .ok_or_else(|| err(format!("no `{EXTENSION_NAME}` extension definition: only playbooks exported by ecir can be imported")))?;
    let pext: PlaybookExt = doc
        .get("playbook_extensions")
        .and_then(|m| m.get(&ext_id))
        .cloned()
        .ok_or_else(|| err("playbook_extensions lacks the ecir extension"))
        .and_then(|v| {
            serde_json::from_value(v).map_err(|e| err(format!("playbook extension: {e}")))
        })?;
    let workflow = doc
        .get("workflow")
        .and_then(Value::as_object)
        .ok_or_else(|| err("missing `workflow`"))?;
    let mut cur = doc
        .get("workflow_start")
        .and_then(Value::as_str)
        .ok_or_else(|| err("missing `workflow_start`"))?
        .to_string();
    let mut steps = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    loop {
        if !seen.insert(cur.clone()) {
            return Err(err(format!("workflow loops at {cur}")));
        }
        let step = workflow
            .get(&cur)
            .ok_or_else(|| err(format!("workflow step {cur} is missing")))?;
        match step.get("type").and_then(Value::as_str) {
            Some("end") => break,
            Some("start") => {}
            Some("action") => {
                let se: StepExt = step
                    .get("step_extensions")
                    .and_then(|m| m.get(&ext_id))
                    .cloned()
                    .ok_or_else(|| err(format!("{cur} lacks the ecir step extension")))
                    .and_then(|v| {
                        serde_json::from_value(v).map_err(|e| err(format!("{cur}: {e}")))
                    })?;
                steps.push(se);
            }
            other => return Err(err(format!("{cur}: unsupported step type {other:?}"))),
        }
        cur = step
            .get("on_completion")
            .and_then(Value::as_str)
            .ok_or_else(|| err(format!("{cur} has no on_completion")))?
            .to_string();
    }
    // Rebuild through the TOML form so the imported playbook is linted like any other.
    let pb = Playbook {
        id: pext.playbook_id,
        version: pext.version,
        updated: pext.updated,
        title: format::Text {
            ja: pext.title_ja,
            en: pext.title_en,
        },
        summary: format::Text {
            ja: pext.summary_ja,
            en: pext.summary_en,
        },
        variables: pext
            .variables
            .into_iter()
            .map(|v| {
                Ok(format::Variable {
                    kind: format::VarType::parse(&v.kind)
                        .ok_or_else(|| err(format!("variable {}: type {}", v.name, v.kind)))?,
                    name: v.name,
                    description: format::Text { ja: v.ja, en: v.en },
                })
            })
            .collect::<Result<_, Error>>()?,
        steps: steps
            .into_iter()
            .map(|s| {
                Ok(Step {
                    phase: format::Phase::parse(&s.phase)
                        .ok_or_else(|| err(format!("{}: phase {}", s.step_id, s.phase)))?,
                    id: s.step_id.clone(),
                    title: format::Text {
                        ja: s.title_ja,
                        en: s.title_en,
                    },
                    text: format::Text {
                        ja: s.text_ja,
                        en: s.text_en,
                    },
                    after: s.after,
                    when: s.applies_if,
                    deadlines: s
                        .deadlines
                        .into_iter()
                        .map(|d| {
                            Ok(format::Deadline {
                                anchor: Anchor::parse(&d.anchor).ok_or_else(|| {
                                    err(format!("{}: anchor {}", s.step_id, d.anchor))
                                })?,
                                unit: format::Unit::parse(&d.unit).ok_or_else(|| {
                                    err(format!("{}: unit {}", s.step_id, d.unit))
                                })?,
                                kind: match d.kind.as_str() {
                                    "hard" => format::DeadlineKind::Hard,
                                    "soft" => format::DeadlineKind::Soft,
                                    k => return Err(err(format!("{}: kind {k}", s.step_id))),
                                },
                                when: d.when,
                                offset: d.offset,
                                roll_forward: d.roll_forward,
                                rule: d.rule,
                            })
                        })
                        .collect::<Result<_, Error>>()?,
                    evidence: s
                        .evidence
                        .into_iter()
                        .map(|e| format::Text { ja: e.ja, en: e.en })
                        .collect(),
                    rules: s.rule_refs,
                })
            })
            .collect::<Result<_, Error>>()?,
    };
    let text = to_toml(&pb);
    let linted = format::parse(&format!("{}.toml", pb.id), &text).map_err(Error::Playbook)?;
    Ok((linted, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundled::{bundled, find_bundled};

    fn is_cacao_id(s: &str, prefix: &str) -> bool {
        let Some(u) = s.strip_prefix(&format!("{prefix}--")) else {
            return false;
        };
        let parts: Vec<&str> = u.split('-').collect();
        parts.len() == 5
            && [8, 4, 4, 4, 12]
                .iter()
                .zip(&parts)
                .all(|(n, p)| p.len() == *n && p.chars().all(|c| c.is_ascii_hexdigit()))
            && ('1'..='5').contains(&parts[2].chars().next().unwrap())
            && "89ab".contains(parts[3].chars().next().unwrap())
    }

    #[test]
    fn required_properties_present() {
        let pb = find_bundled("card-skimming").unwrap();
        let doc = export_cacao(&pb);
        for k in [
            "type",
            "spec_version",
            "id",
            "name",
            "created_by",
            "created",
            "modified",
            "workflow_start",
            "workflow",
        ] {
            assert!(doc.get(k).is_some(), "missing {k}");
        }
        assert_eq!(doc["type"], "playbook");
        assert_eq!(doc["spec_version"], "cacao-2.0");
        assert!(is_cacao_id(doc["id"].as_str().unwrap(), "playbook"));
        assert!(is_cacao_id(doc["created_by"].as_str().unwrap(), "identity"));
        let created = doc["created"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(created).is_ok() && created.ends_with(".000Z")
        );
        let wf = doc["workflow"].as_object().unwrap();
        assert_eq!(wf.len(), pb.steps.len() + 2);
        let start = doc["workflow_start"].as_str().unwrap();
        assert_eq!(wf[start]["type"], "start");
        let (mut actions, mut ends) = (0, 0);
        for (k, v) in wf {
            let ty = v["type"].as_str().unwrap();
            assert!(is_cacao_id(k, ty), "{k}");
            match ty {
                "action" => {
                    actions += 1;
                    assert_eq!(v["commands"][0]["type"], "manual");
                    assert!(!v["commands"][0]["command"].as_str().unwrap().is_empty());
                    let agent = v["agent"].as_str().unwrap();
                    assert!(doc["agent_definitions"].get(agent).is_some());
                    assert!(wf.contains_key(v["on_completion"].as_str().unwrap()));
                }
                "end" => {
                    ends += 1;
                    assert!(v.get("on_completion").is_none());
                }
                _ => assert!(wf.contains_key(v["on_completion"].as_str().unwrap())),
            }
        }
        assert_eq!((actions, ends), (pb.steps.len(), 1));
        let defs = doc["extension_definitions"].as_object().unwrap();
        assert_eq!(defs.len(), 1);
        let (ext_id, def) = defs.iter().next().unwrap();
        assert!(is_cacao_id(ext_id, "extension-definition"));
        for k in ["type", "name", "created_by", "schema", "version"] {
            assert!(def.get(k).is_some(), "extension definition lacks {k}");
        }
        // Deterministic.
        assert_eq!(export_cacao(&pb), doc);
    }

    #[test]
    fn round_trip_every_bundled_playbook() {
        for (file, src) in bundled() {
            let pb = format::parse(file, src).unwrap();
            let text = serde_json::to_string_pretty(&export_cacao(&pb)).unwrap();
            let (back, toml_text) = import_cacao(&text).unwrap();
            assert_eq!(back, pb, "{file}");
            assert_eq!(format::parse("x.toml", &toml_text).unwrap(), pb);
        }
    }

    #[test]
    fn import_rejects_foreign_documents() {
        assert!(matches!(import_cacao("{}"), Err(Error::Cacao(_))));
        let mut doc = export_cacao(&find_bundled("web-shell").unwrap());
        doc["spec_version"] = json!("cacao-1.0");
        assert!(import_cacao(&doc.to_string()).is_err());
    }
}
