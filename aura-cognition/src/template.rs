//! Chat templates: the Jinja template a GGUF model carries, rendered with minijinja
//! the way Hugging Face's `apply_chat_template` renders it (trim_blocks, lstrip_blocks,
//! loop controls, Python string methods, `raise_exception`).

use serde::Serialize;

use crate::model::{ChatMessage, Role};
use crate::{Error, Result};

/// A chat template: the model's own Jinja source, or the ChatML fallback.
#[derive(Clone, Debug)]
pub struct ChatTemplate {
    source: Option<String>,
    bos_token: String,
    eos_token: String,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

impl ChatTemplate {
    /// A template from Jinja source (`tokenizer.chat_template`) and the model's BOS/EOS text.
    pub fn jinja(
        source: impl Into<String>,
        bos_token: impl Into<String>,
        eos_token: impl Into<String>,
    ) -> Self {
        Self {
            source: Some(source.into()),
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
        }
    }

    /// The fallback for a model without a template: ChatML (`<|im_start|>role\n…<|im_end|>\n`).
    pub fn chatml() -> Self {
        Self {
            source: None,
            bos_token: String::new(),
            eos_token: String::new(),
        }
    }

    /// Whether this is the model's own template (not the fallback).
    pub fn is_model_template(&self) -> bool {
        self.source.is_some()
    }

    /// The prompt for `messages`, ending where the assistant's reply begins.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String> {
        if messages.is_empty() {
            return Err(Error::Invalid("a chat needs at least one message".into()));
        }
        let Some(source) = &self.source else {
            let mut out = String::new();
            for m in messages {
                out.push_str("<|im_start|>");
                out.push_str(role_name(m.role));
                out.push('\n');
                out.push_str(&m.content);
                out.push_str("<|im_end|>\n");
            }
            out.push_str("<|im_start|>assistant\n");
            return Ok(out);
        };
        let mut env = minijinja::Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        let tmpl = env.template_from_str(source).map_err(|e| {
            Error::Invalid(format!("the model's chat template does not parse: {e}"))
        })?;
        let msgs: Vec<Message<'_>> = messages
            .iter()
            .map(|m| Message {
                role: role_name(m.role),
                content: &m.content,
            })
            .collect();
        tmpl.render(minijinja::context! {
            messages => msgs,
            add_generation_prompt => true,
            bos_token => self.bos_token,
            eos_token => self.eos_token,
        })
        .map_err(|e| Error::Invalid(format!("the model's chat template rejected the chat: {e}")))
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M-Instruct's template, as its GGUF carries it.
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn renders_smollm2() {
        let t = ChatTemplate::jinja(SMOLLM2, "<|im_start|>", "<|im_end|>");
        let p = t
            .render(&[ChatMessage::system("Be brief."), ChatMessage::user("Hi")])
            .unwrap();
        assert_eq!(
            p,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let p = t.render(&[ChatMessage::user("Hi")]).unwrap();
        assert!(p.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"));
    }

    #[test]
    fn python_methods_blocks_and_exceptions() {
        let src = "{{ bos_token }}{% for m in messages %}\n  {% if m.role == 'assistant' %}{{ raise_exception('no') }}{% endif %}\n  {{ m.content.strip() | upper }};\n{% endfor %}";
        let t = ChatTemplate::jinja(src, "<s>", "</s>");
        assert_eq!(
            t.render(&[ChatMessage::user(" a "), ChatMessage::user("b")])
                .unwrap(),
            "<s>  A;\n  B;\n"
        );
        assert!(matches!(
            t.render(&[ChatMessage::assistant("x")]),
            Err(Error::Invalid(m)) if m.contains("no")
        ));
    }

    #[test]
    fn falls_back_to_chatml() {
        let t = ChatTemplate::chatml();
        assert!(!t.is_model_template());
        assert_eq!(
            t.render(&[ChatMessage::user("Hi")]).unwrap(),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(t.render(&[]).is_err());
    }
}
