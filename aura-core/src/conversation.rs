//! Conversation: a natural-language message becomes a plan, and every message and reply
//! becomes a memory node linked to the object, so later questions can be answered from
//! memory (`reflect`).

use std::collections::HashSet;

use aura_cognition::{
    ChatRequest, GenerationOptions, Plan, PlanContext, Planner, RealTimeContextFractal,
};
use aura_store::{ContextLink, MemoryNode, NewMemoryNode, NodeRef, Object, ObjectId, StoreExt};
use serde::Serialize;
use serde_json::{json, Value};
use tracing::Instrument as _;

use aura_forge::trail::{ConversationRefused, Payload};

use crate::runtime::OnMiss;
use crate::search::{python_call, request_examples, satisfies, CallOutput};
use crate::{Error, LearnRequest, Result, Runtime};

/// What the object said back, and how it got there.
#[derive(Clone, Debug, Serialize)]
pub struct Reply {
    /// The answer, in words.
    pub text: String,
    /// The plan the message became.
    pub plan: Plan,
    /// The value a called method returned.
    pub value: Option<Value>,
    /// True when a learn plan was refused (the text names the reasons and rule ids).
    pub refused: bool,
    /// Memory nodes the answer was built from (for `reflect`).
    pub evidence: Vec<MemoryNode>,
    /// The real-time context used (for answers that needed it).
    pub context: Option<RealTimeContextFractal>,
}

impl Runtime {
    /// Tells object `id` something in natural language: "teach yourself to …",
    /// "calculate … for 10", "summarize our previous conversation about …", or a question.
    ///
    /// The message and the reply are recorded as memory nodes linked to the object.
    /// A refused learn is a reply (with `refused` set), not an error: the conversation goes on.
    pub async fn tell(&self, id: ObjectId, message: &str) -> Result<Reply> {
        let message = message.trim();
        if message.is_empty() {
            return Err(Error::Invalid("the message is empty".into()));
        }
        if message.len() > 16 * 1024 {
            return Err(Error::Invalid("the message is longer than 16 KiB".into()));
        }
        let object = self.object(id).await?;
        let view = self.chain_view(id).await?;
        let context = PlanContext::with_selectors(plan_selectors(&view, message));
        let planner = match self.model() {
            Some(model) => Planner::new(model.clone()),
            None => Planner::rules_only(),
        };
        // A planner's model that never answers must not hold the message forever; it
        // gets the learn cycle's budget.
        let budget = self.config().learn_budget;
        let span = tracing::info_span!(target: "aura", "aura.plan",
            aura.object.id = %id, aura.plan.kind = tracing::field::Empty);
        let plan = tokio::time::timeout(budget, planner.plan(message, &context))
            .instrument(span.clone())
            .await
            .map_err(|_| Error::Unavailable {
                port: "model",
                message: format!(
                    "the planner's model did not answer within {} s (AURA_LEARN_BUDGET_SECS)",
                    budget.as_secs()
                ),
            })??;
        span.record("aura.plan.kind", plan_kind(&plan));
        drop(span); // the span ends when its last handle drops
        tracing::info!(target: "Orchestrator", object = %object.name, ?plan, "message planned");

        // Recall before recording this message, so it does not find itself.
        let reply = match plan.clone() {
            Plan::Learn {
                selector,
                description,
                examples,
            } => {
                let mut request_text =
                    learn_request_text(message, &selector, &description, &examples);
                if description.is_empty() {
                    // A bare example ("fibonacci(10) == 55") answers an earlier turn:
                    // learn from that turn's words as well, as a call does.
                    request_text = self
                        .request_on_miss(&object, &selector, &request_text)
                        .await?;
                }
                self.tell_learn(id, plan, selector, request_text).await?
            }
            Plan::Invoke {
                selector,
                arguments,
            } => {
                // "fibonacci(10) == 55" says what the call should give, too.
                let expected = request_examples(self.guard(), message, &selector)
                    .into_iter()
                    .find(|e| e.args == arguments)
                    .map(|e| e.expected);
                self.tell_invoke(&object, plan, selector, arguments, message, expected)
                    .await?
            }
            Plan::Reflect { question } => self.reflect(&object, plan, &question).await?,
            Plan::Answer {
                text,
                needs_context,
            } => {
                if needs_context {
                    self.answer_from_context(plan, &text).await?
                } else {
                    reply(plan, text)
                }
            }
        };
        if reply.refused {
            // The refused learn itself wrote nothing but its trail; the turn still
            // happened, and "what did we talk about" must be able to recall it.
            self.store()
                .append_event(
                    ConversationRefused {
                        message: message.to_string(),
                        reply: reply.text.clone(),
                    }
                    .event(Some(object.id)),
                )
                .await?;
        }
        self.record_turn(&object, message, &reply).await?;
        Ok(reply)
    }

    /// "Teach yourself to …": learns the method; a refusal is a reply, not an error.
    async fn tell_learn(
        &self,
        id: ObjectId,
        plan: Plan,
        selector: String,
        request_text: String,
    ) -> Result<Reply> {
        let request = LearnRequest {
            selector: selector.clone(),
            request_text,
            args: vec![],
        };
        match self.learn(id, request).await {
            Ok(learned) => Ok(reply(
                plan,
                format!(
                    "I learned `{selector}` (version {}, {} test(s) passed, {} attempt(s)).{}",
                    learned.method.version,
                    learned.tests_passed,
                    learned.attempts,
                    shown_calls(&selector, &learned.shown)
                ),
            )),
            Err(Error::Refused {
                failures, attempts, ..
            }) => Ok(refusal(plan, &selector, attempts, &failures)),
            Err(e) => Err(e),
        }
    }

    /// "Calculate fibonacci for 10": calls the method. A selector nothing understands
    /// yet is learned first (when a model is configured), from the person's words and
    /// what an earlier turn asked for under that name; a learn that fails is a refused
    /// reply, as for "teach yourself". When the person said what the call should give
    /// (`expected`) and it gives something else or raises, the method is relearned with
    /// that example as a hard check ([`Runtime::relearn`]).
    async fn tell_invoke(
        &self,
        object: &Object,
        plan: Plan,
        selector: String,
        arguments: Vec<Value>,
        message: &str,
        expected: Option<Value>,
    ) -> Result<Reply> {
        let on_miss = OnMiss::Learn {
            words: Some(message),
        };
        // Said in Python, as the person writes examples ("is_even(7) == False").
        let call = python_call(&selector, &arguments);
        let sent = self
            .send_with(object.id, &selector, arguments.clone(), on_miss)
            .await;
        // The person said what it should give and it gave something else, or raised
        // instead: either way it is wrong, and relearned from their example.
        if let Some(expected) = &expected {
            let said = aura_cognition::python_literal(expected);
            let wrong = match &sent {
                Ok(value) if !satisfies(value, expected) => Some(format!(
                    "{call} gave {}, not {said}",
                    aura_cognition::python_literal(value)
                )),
                Err(Error::MethodRaised { error, .. }) => {
                    Some(format!("{call} raised {}, not {said}", error.type_name))
                }
                _ => None,
            };
            if let Some(wrong) = wrong {
                return self
                    .correct(object, plan, &selector, arguments, message, wrong)
                    .await;
            }
        }
        match sent {
            Ok(value) => {
                let shown = aura_cognition::python_literal(&value);
                let mut r = reply(plan, format!("{call} = {shown}"));
                r.value = Some(value);
                Ok(r)
            }
            Err(Error::Refused {
                failures, attempts, ..
            }) => Ok(refusal(plan, &selector, attempts, &failures)),
            Err(e) => Err(e),
        }
    }

    /// Relearns a method the person's example (in `message`) shows is wrong, from
    /// that example and the words the method was first asked for with; a refusal
    /// leaves the method as it was and says so.
    async fn correct(
        &self,
        object: &Object,
        plan: Plan,
        selector: &str,
        arguments: Vec<Value>,
        message: &str,
        wrong: String,
    ) -> Result<Reply> {
        let request = LearnRequest {
            selector: selector.to_string(),
            request_text: self.request_on_miss(object, selector, message).await?,
            args: arguments.clone(),
        };
        match self.relearn(object.id, request).await {
            Ok(learned) => {
                let value = self.send(object.id, selector, arguments).await?;
                let mut r = reply(
                    plan,
                    format!(
                        "{wrong}, so I relearned `{selector}` from your example: version {} gives {} ({} test(s) passed).{}",
                        learned.method.version,
                        aura_cognition::python_literal(&value),
                        learned.tests_passed,
                        shown_calls(selector, &learned.shown)
                    ),
                );
                r.value = Some(value);
                Ok(r)
            }
            Err(Error::Refused {
                failures, attempts, ..
            }) => {
                let mut r = refusal(plan, selector, attempts, &failures);
                r.text = format!("{wrong}. {} `{selector}` stays as it was.", r.text);
                Ok(r)
            }
            Err(e) => Err(e),
        }
    }

    /// Answers a question about past conversation from retrieved memory nodes.
    async fn reflect(&self, object: &Object, plan: Plan, question: &str) -> Result<Reply> {
        let topic = topic_words(question);
        let hits = self.store().search_memory(&topic, 8).await?;
        let nodes: Vec<MemoryNode> = hits
            .into_iter()
            .map(|h| h.node)
            .filter(|n| n.meta.get("object").and_then(Value::as_str) == Some(object.name.as_str()))
            .collect();
        if nodes.is_empty() {
            return Ok(reply(
                plan,
                format!("I have no memory of that ({question})."),
            ));
        }
        let notes: Vec<String> = nodes
            .iter()
            .map(|n| format!("- ({}) {}", n.kind, quoted(&n.text)))
            .collect();
        // A summary that never names the topic is not about these notes (a small
        // model often answers with a greeting), and one whose words mostly come from
        // elsewhere is the model's general knowledge of the topic, not a summary of
        // what was said: the turns themselves, in order, say what happened instead.
        let summary = match self.model() {
            Some(model) => {
                let request = ChatRequest::new(
                    "Summarize the conversation notes in two sentences. Use only the notes.",
                    format!("Question: {question}\nNotes:\n{}", notes.join("\n")),
                )
                .with_options(GenerationOptions {
                    temperature: 0.0,
                    max_tokens: 120,
                    ..GenerationOptions::default()
                });
                match model.chat(request).await {
                    Ok(r) if names_topic(&r.text, &topic) && drawn_from(&r.text, &notes) => {
                        r.text.trim().to_string()
                    }
                    _ => recount(&nodes),
                }
            }
            None => recount(&nodes),
        };
        let text = format!(
            "{summary}\n(from {} memory notes)\n{}",
            nodes.len(),
            notes.join("\n")
        );
        let mut r = reply(plan, text);
        r.evidence = nodes;
        Ok(r)
    }

    /// Answers from the real-time context (time, place, news), saying which providers failed.
    async fn answer_from_context(&self, plan: Plan, question: &str) -> Result<Reply> {
        let fractal = self.context().assemble().await;
        let place = fractal
            .place
            .as_ref()
            .map(|p| p.name.clone())
            .unwrap_or_else(|| "here".into());
        let mut text = match fractal.headlines.first() {
            Some(h) => format!(
                "Top story near {place}: {}{}",
                h.title,
                h.source
                    .as_ref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            ),
            None => format!("I have no news for {place} right now (question: {question})."),
        };
        let failed: Vec<String> = fractal.failures().map(|s| s.provider.clone()).collect();
        if !failed.is_empty() {
            text.push_str(&format!(" [unavailable: {}]", failed.join(", ")));
        }
        let mut r = reply(plan, text);
        r.context = Some(fractal);
        Ok(r)
    }

    /// The request a learn on a miss starts from: what an earlier turn asked this object
    /// to learn as `selector`, then `words` (what was said now, or the call itself).
    /// A refused learn writes nothing but its trail, so its turn is where the request
    /// survives: "calculate fibonacci for 10" after a refused "teach yourself to …"
    /// learns what was asked for then, not just a name and a number.
    pub(crate) async fn request_on_miss(
        &self,
        object: &Object,
        selector: &str,
        words: &str,
    ) -> Result<String> {
        Ok(match self.earlier_request(object, selector).await? {
            Some(earlier) if earlier != words => format!("{earlier}\n{words}"),
            _ => words.to_string(),
        })
    }

    /// The newest turn's learn request for `selector` on `object`, in its own words
    /// (with the examples the planner read).
    async fn earlier_request(&self, object: &Object, selector: &str) -> Result<Option<String>> {
        let hits = self
            .store()
            .search_memory(&selector.replace('_', " "), 16)
            .await?;
        Ok(hits
            .into_iter()
            .map(|h| h.node)
            .filter(|n| {
                n.kind == "message"
                    && n.meta.get("object").and_then(Value::as_str) == Some(object.name.as_str())
                    && n.meta.get("selector").and_then(Value::as_str) == Some(selector)
            })
            .filter_map(|n| {
                let request = n.meta.get("request").and_then(Value::as_str)?.to_string();
                Some((n.created_at, request))
            })
            .max_by_key(|(at, _)| *at)
            .map(|(_, request)| request))
    }

    /// One memory node for the message, one for the reply, linked to each other and the object.
    /// A turn that asked for a method keeps its selector, and a learn its request, so a
    /// later call can learn from it ([`Runtime::request_on_miss`]).
    async fn record_turn(&self, object: &Object, message: &str, reply: &Reply) -> Result<()> {
        let mut meta = json!({ "object": object.name, "plan": plan_kind(&reply.plan) });
        match &reply.plan {
            Plan::Learn {
                selector,
                description,
                examples,
            } => {
                meta["selector"] = json!(selector);
                meta["request"] =
                    json!(learn_request_text(message, selector, description, examples));
            }
            Plan::Invoke { selector, .. } => meta["selector"] = json!(selector),
            Plan::Reflect { .. } | Plan::Answer { .. } => {}
        }
        let mut tx = self.store().begin().await?;
        let said = tx
            .add_memory_node(NewMemoryNode {
                meta: meta.clone(),
                ..NewMemoryNode::new("message", message)
            })
            .await?;
        let answered = tx
            .add_memory_node(NewMemoryNode {
                meta,
                ..NewMemoryNode::new("reply", reply.text.clone())
            })
            .await?;
        for link in [
            (
                NodeRef::Node(said.id),
                NodeRef::Object(object.id),
                "said_to",
            ),
            (
                NodeRef::Node(answered.id),
                NodeRef::Node(said.id),
                "replied_to",
            ),
        ] {
            tx.add_link(ContextLink {
                from: link.0,
                to: link.1,
                kind: link.2.into(),
                weight: 1.0,
            })
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn reply(plan: Plan, text: String) -> Reply {
    Reply {
        text,
        plan,
        value: None,
        refused: false,
        evidence: Vec::new(),
        context: None,
    }
}

fn plan_kind(plan: &Plan) -> &'static str {
    match plan {
        Plan::Learn { .. } => "learn",
        Plan::Invoke { .. } => "invoke",
        Plan::Reflect { .. } => "reflect",
        Plan::Answer { .. } => "answer",
    }
}

/// The learn request for a "teach yourself" message: the user's words, the planner's
/// description when it adds something, and the examples it read, one per line.
fn learn_request_text(
    message: &str,
    selector: &str,
    description: &str,
    examples: &[aura_cognition::plan::PlanExample],
) -> String {
    let mut text = message.to_string();
    if !description.is_empty() && !message.contains(description) {
        text.push_str(&format!("\n({description})"));
    }
    for ex in examples {
        let args = ex
            .args
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        text.push_str(&format!("\nexample: {selector}({args}) == {}", ex.expected));
    }
    text
}

/// What a learned method gives on a few calls, said so that the person can catch a
/// wrong one and answer with the right value: "It gives f(3) == 6 and f(0) raises
/// ValueError; if one is wrong, tell me what it should give (`f(3) == …`) and I will
/// relearn it." A small model's wrong methods are shared misconceptions no vote among
/// its samples catches; the person can. On a line of its own, so that a summary of the
/// conversation, which quotes a reply's first line, keeps to what happened.
fn shown_calls(selector: &str, shown: &[(Vec<Value>, CallOutput)]) -> String {
    let Some((first_args, _)) = shown.first() else {
        return String::new();
    };
    let calls: Vec<String> = shown
        .iter()
        .map(|(args, output)| {
            let call = python_call(selector, args);
            match output {
                CallOutput::Value(value) => {
                    format!("{call} == {}", aura_cognition::python_literal(value))
                }
                CallOutput::Raised(name) => format!("{call} raises {name}"),
            }
        })
        .collect();
    let listed = match calls.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => calls.concat(),
    };
    format!(
        "\nIt gives {listed}; if one is wrong, tell me what it should give (`{} == …`) and I will relearn it.",
        python_call(selector, first_args)
    )
}

/// The reply to a learn the cycle refused: the guard's rule ids and the last reason.
fn refusal(plan: Plan, selector: &str, attempts: u32, failures: &[crate::AttemptFailure]) -> Reply {
    let mut rules: Vec<String> = failures.iter().flat_map(|f| f.rules.clone()).collect();
    rules.sort();
    rules.dedup();
    let last = failures
        .last()
        .map(|f| f.message.clone())
        .unwrap_or_default();
    // Which kind of refusal: the guard stopped the code the model wrote (most
    // candidates broke its rules), or the model never wrote a method that passed.
    let guarded: Vec<&crate::AttemptFailure> =
        failures.iter().filter(|f| !f.rules.is_empty()).collect();
    let text = if !guarded.is_empty() && guarded.len() * 2 >= attempts as usize {
        format!(
            "I tried to learn `{selector}` and the guard refused it [{}]: {} of {attempts} candidate(s) broke its rules. {}",
            rules.join(", "),
            guarded.len(),
            guarded[0].message
        )
    } else {
        let stopped = if guarded.is_empty() {
            String::new()
        } else {
            format!(
                " ({} stopped by the guard [{}])",
                guarded.len(),
                rules.join(", ")
            )
        };
        format!(
            "I tried to learn `{selector}` and refused after {attempts} candidate(s){stopped}: {last}"
        )
    };
    let mut r = reply(plan, text);
    r.refused = true;
    r
}

/// Whether `text` names at least one of the topic's words (of three letters or more).
fn names_topic(text: &str, topic: &str) -> bool {
    let text = text.to_lowercase();
    topic
        .split_whitespace()
        .filter(|w| w.chars().count() >= 3)
        .any(|w| text.contains(&w.to_lowercase()))
}

/// Whether most of `text`'s words (of four letters or more) occur in `notes`: a
/// summary retells the notes, an essay on their topic does not.
fn drawn_from(text: &str, notes: &[String]) -> bool {
    let words = |t: &str| -> Vec<String> {
        t.split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 4)
            .map(str::to_lowercase)
            .collect()
    };
    let known: HashSet<String> = notes.iter().flat_map(|n| words(n)).collect();
    let said = words(text);
    let found = said.iter().filter(|w| known.contains(*w)).count();
    !said.is_empty() && found * 2 >= said.len()
}

/// The recalled turns in the order they happened: "You said “….” I replied “….”"
fn recount(nodes: &[MemoryNode]) -> String {
    let mut turns: Vec<&MemoryNode> = nodes
        .iter()
        .filter(|n| n.kind == "message" || n.kind == "reply")
        .collect();
    turns.sort_by_key(|n| n.created_at);
    if turns.is_empty() {
        return "I remember these notes on it:".into();
    }
    turns
        .iter()
        .map(|n| {
            let who = if n.kind == "message" {
                "You said"
            } else {
                "I replied"
            };
            let said = quoted(&n.text);
            // One full stop: inside the quote when the turn ended a sentence.
            let stop = if said.ends_with(['.', '!', '?', '…']) {
                ""
            } else {
                "."
            };
            format!("{who} “{said}{stop}”")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a question about the past is about: its words, without the ones that only
/// ask ("summarize our previous conversation about the fibonacci sequence" →
/// "fibonacci sequence"), so the search ranks the turns on the topic first.
fn topic_words(question: &str) -> String {
    const ASKING: &[&str] = &[
        "summarize",
        "summarise",
        "our",
        "previous",
        "conversation",
        "conversations",
        "about",
        "what",
        "did",
        "we",
        "talk",
        "talked",
        "discuss",
        "discussed",
        "recall",
        "remind",
        "me",
        "the",
        "have",
        "you",
        "and",
        "of",
        "a",
        "an",
        "please",
        "tell",
    ];
    let words: Vec<&str> = question
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty() && !ASKING.contains(&w.to_lowercase().as_str()))
        .collect();
    if words.is_empty() {
        question.to_string()
    } else {
        words.join(" ")
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// The most characters of one recalled turn that a summary quotes.
const MAX_QUOTED_CHARS: usize = 200;

/// The first line of a recalled node, cut to [`MAX_QUOTED_CHARS`] with an ellipsis.
/// A summary is itself remembered as a reply, so a later summary recalls it: quoting
/// turns whole made each summary contain the ones before it, growing without bound.
fn quoted(text: &str) -> std::borrow::Cow<'_, str> {
    let line = first_line(text).trim();
    match line.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", line[..cut].trim_end()).into(),
        None => line.into(),
    }
}

/// The most selectors a plan is given: a learned library holds thousands.
const MAX_PLAN_SELECTORS: usize = 48;

/// The selectors the planner is told the object understands, looked up rather than
/// listed: each run of up to four of the message's words joined by `_` (what the rules
/// match: "calculate fibonacci for 10" finds `fibonacci`, "is it a leap year" finds
/// `leap_year`), then the nearest others, at most [`MAX_PLAN_SELECTORS`] in all.
fn plan_selectors(view: &crate::dispatch::ChainView, message: &str) -> Vec<String> {
    let words: Vec<String> = message
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    // The rules name a method from the words without filler ("the", "of", …) too.
    let content: Vec<String> = words
        .iter()
        .filter(|w| !aura_cognition::plan::is_filler(w))
        .cloned()
        .collect();
    let mut named: Vec<String> = Vec::new();
    for words in [&words, &content] {
        for start in 0..words.len() {
            for end in (start + 1)..=(start + 4).min(words.len()) {
                let known = aura_store::Selector::new(words[start..end].join("_"))
                    .ok()
                    .filter(|s| view.resolve(s).is_some());
                if let Some(s) = known {
                    if !named.iter().any(|n| n == s.as_str()) {
                        named.push(s.to_string());
                    }
                }
            }
        }
    }
    for table in view.chain() {
        if named.len() >= MAX_PLAN_SELECTORS {
            break;
        }
        // In name order where that is cheap; a large library's table is sampled as it
        // comes, since sorting it would cost what this function exists to avoid.
        let mut own: Vec<&str> = if table.len() <= 4 * MAX_PLAN_SELECTORS {
            table.methods().map(|m| m.selector.as_str()).collect()
        } else {
            let wanted = MAX_PLAN_SELECTORS - named.len();
            table
                .methods()
                .take(2 * wanted)
                .map(|m| m.selector.as_str())
                .collect()
        };
        own.sort_unstable();
        for s in own {
            if named.len() >= MAX_PLAN_SELECTORS {
                break;
            }
            if !named.iter().any(|n| n == s) {
                named.push(s.to_owned());
            }
        }
    }
    named.truncate(MAX_PLAN_SELECTORS);
    named
}

#[cfg(test)]
mod tests {
    use super::*;
    use aura_store::NodeId;

    #[test]
    fn a_plan_is_told_the_selectors_the_message_names_not_the_library() {
        use crate::dispatch::{ChainMethods, ChainView, MethodTable};
        let root = aura_store::ObjectId::new();
        let method = |name: &str| aura_store::Method {
            object_id: root,
            selector: aura_store::Selector::new(name).unwrap(),
            source: String::new(),
            tests: String::new(),
            doc: String::new(),
            version: 1,
            provenance: aura_store::Provenance::Manual,
            calls: Some(vec![]),
            created_at: Utc::now(),
        };
        let library: Vec<aura_store::Method> = (0..3000)
            .map(|i| method(&format!("skill_{i:04}")))
            .chain([method("fibonacci"), method("leap_year")])
            .collect();
        let view = ChainView {
            methods: ChainMethods::new(vec![std::sync::Arc::new(MethodTable::new(
                root,
                "genesis".into(),
                vec![],
                library,
            ))]),
        };
        let named = plan_selectors(&view, "calculate the fibonacci of 10, is 2024 a leap year?");
        assert_eq!(named[..2], ["fibonacci", "leap_year"]);
        assert_eq!(named.len(), MAX_PLAN_SELECTORS);
    }
    use chrono::{Duration, Utc};

    fn node(kind: &str, text: &str, minute: i64) -> MemoryNode {
        MemoryNode {
            id: NodeId::new(),
            kind: kind.into(),
            text: text.into(),
            embedding: None,
            meta: Value::Null,
            created_at: Utc::now() + Duration::minutes(minute),
        }
    }

    #[test]
    fn an_essay_on_the_topic_is_not_a_summary_of_the_notes() {
        let notes = vec![
            "- (message) teach yourself to calculate the fibonacci sequence".to_string(),
            "- (reply) I learned `fibonacci` (version 1, 1 test(s) passed, 8 attempt(s))."
                .to_string(),
            "- (message) calculate fibonacci for 10".to_string(),
            "- (reply) fibonacci(10) = 55".to_string(),
        ];
        assert!(!drawn_from(
            "The Fibonacci sequence is a fundamental concept in mathematics that has been used for centuries to model natural phenomena.",
            &notes
        ));
        assert!(drawn_from(
            "You asked me to calculate the fibonacci sequence; I learned fibonacci and then calculated fibonacci for 10.",
            &notes
        ));
        assert!(!drawn_from("", &notes));
    }

    #[test]
    fn a_summary_that_never_names_the_topic_is_not_about_it() {
        let topic = topic_words("summarize our previous conversation about the fibonacci sequence");
        assert!(names_topic(
            "We talked about the Fibonacci numbers.",
            &topic
        ));
        assert!(!names_topic(
            "I'm ready to help. What's your next question?",
            &topic
        ));
    }

    #[test]
    fn a_summary_quotes_each_turn_at_most_so_far() {
        // Each summary is remembered and recalled by the next: quoting whole turns
        // made summaries of summaries grow without bound.
        let long = "word ".repeat(5_000);
        let nodes: Vec<MemoryNode> = (0..8).map(|i| node("reply", &long, i)).collect();
        let told = recount(&nodes);
        assert!(
            told.chars().count() < 8 * (MAX_QUOTED_CHARS + 20),
            "{}",
            told.len()
        );
        assert!(told.contains("word…”"), "{told}");
        let short = [node("message", "hello there", 0)];
        assert_eq!(recount(&short), "You said “hello there.”");
    }

    #[test]
    fn the_recalled_turns_are_recounted_in_the_order_they_happened() {
        // Ranked by relevance, not time: the recount puts them back in order.
        let nodes = [
            node("reply", "fibonacci(10) = 55", 3),
            node(
                "message",
                "teach yourself to calculate the fibonacci sequence",
                0,
            ),
            node("method", "def fibonacci(self, n): …", 1),
            node("reply", "I learned `fibonacci` (version 1)\nmore", 1),
            node("message", "calculate fibonacci for 10", 2),
        ];
        assert_eq!(
            recount(&nodes),
            "You said “teach yourself to calculate the fibonacci sequence.” \
             I replied “I learned `fibonacci` (version 1).” \
             You said “calculate fibonacci for 10.” I replied “fibonacci(10) = 55.”"
        );
    }
}
