//! The only module that talks to the Python parser (Astral's `ruff_python_parser`,
//! pinned in Cargo.toml). Swapping parsers means re-implementing this module and
//! re-pointing the walker's exhaustive matches at the new AST; the compiler lists
//! every node kind that needs a rule.
//!
//! Deeply nested input: the parser grows its own stack while parsing, but dropping
//! a very deep tree recurses on the caller's stack. [`dispose`] drops trees that the
//! walker found too deep on a helper thread with a stack sized to the source. One
//! path of the parser does not grow its stack: error recovery turns a malformed
//! pattern back into an expression by plain recursion, a level per bracket, so
//! [`bracket_depth_beyond`] lets the walker refuse deep bracket nests before parsing.

pub(crate) use ruff_python_ast as ast;
use ruff_python_parser::{Mode, ParseOptions};
pub(crate) use ruff_text_size::Ranged;

/// A syntax error: byte offset and the parser's message.
pub(crate) struct SyntaxError {
    pub offset: usize,
    pub message: String,
}

/// A parsed module, or the syntax errors (at most `max_errors`) and the recovered
/// tree, which still has to be disposed of safely.
pub(crate) struct ParsedModule {
    pub module: ast::ModModule,
    pub errors: Vec<SyntaxError>,
}

/// Whether brackets (`(`, `[`, `{`) nest more than `max` deep anywhere in `source`,
/// read by the lexer alone (iterative, so any depth is safe), which skips strings and
/// comments.
pub(crate) fn bracket_depth_beyond(source: &str, max: usize) -> bool {
    use ruff_python_ast::token::TokenKind;

    let mut lexer = ruff_python_parser::lexer::lex(source, Mode::Module);
    let mut depth = 0usize;
    loop {
        match lexer.next_token() {
            TokenKind::EndOfFile => return false,
            TokenKind::Lpar | TokenKind::Lsqb | TokenKind::Lbrace => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            TokenKind::Rpar | TokenKind::Rsqb | TokenKind::Rbrace => {
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
    }
}

/// Parses a whole module. Never panics; syntax errors are returned with the
/// recovered tree.
pub(crate) fn parse_module(source: &str, max_errors: usize) -> ParsedModule {
    let parsed = ruff_python_parser::parse_unchecked(source, ParseOptions::from(Mode::Module));
    let errors = collect_errors(parsed.errors(), max_errors);
    let module = match parsed.into_syntax() {
        ast::Mod::Module(module) => module,
        ast::Mod::Expression(expression) => ast::ModModule {
            node_index: ast::AtomicNodeIndex::NONE,
            range: expression.range,
            body: vec![ast::Stmt::Expr(ast::StmtExpr {
                node_index: ast::AtomicNodeIndex::NONE,
                range: expression.range,
                value: expression.body,
            })]
            .into(),
        },
    };
    ParsedModule { module, errors }
}

/// A parsed single expression (used for string annotations).
pub(crate) struct ParsedExpression {
    pub expr: Box<ast::Expr>,
    pub errors: Vec<SyntaxError>,
}

/// Parses a single expression (a string annotation's content).
pub(crate) fn parse_expression(source: &str) -> ParsedExpression {
    let parsed = ruff_python_parser::parse_unchecked(source, ParseOptions::from(Mode::Expression));
    let errors = collect_errors(parsed.errors(), 1);
    let expr = match parsed.into_syntax() {
        ast::Mod::Expression(expression) => expression.body,
        ast::Mod::Module(module) => {
            // Not produced in expression mode; keep the tree so it is disposed of
            // like any other and report it as unreadable.
            let range = module.range;
            dispose_module(module, source.len());
            return ParsedExpression {
                expr: Box::new(ast::Expr::NoneLiteral(ast::ExprNoneLiteral {
                    node_index: ast::AtomicNodeIndex::NONE,
                    range,
                })),
                errors: vec![SyntaxError {
                    offset: 0,
                    message: "expected an expression".to_owned(),
                }],
            };
        }
    };
    ParsedExpression { expr, errors }
}

fn collect_errors(errors: &[ruff_python_parser::ParseError], max: usize) -> Vec<SyntaxError> {
    errors
        .iter()
        .take(max)
        .map(|e| SyntaxError {
            offset: usize::from(e.location.start()),
            message: e.error.to_string(),
        })
        .collect()
}

/// Bytes of helper-thread stack reserved per source byte when dropping a tree too
/// deep for the caller's stack (a tree is at most about one level per byte).
const DROP_STACK_PER_BYTE: usize = 1024;
const DROP_STACK_MIN: usize = 8 << 20;
const DROP_STACK_MAX: usize = 1 << 30;

/// Drops a module tree that may be too deep to drop recursively on this stack.
pub(crate) fn dispose_module(module: ast::ModModule, source_len: usize) {
    dispose(module, source_len);
}

/// Drops an expression tree that may be too deep to drop on this stack.
pub(crate) fn dispose_expr(expr: Box<ast::Expr>, source_len: usize) {
    dispose(expr, source_len);
}

fn dispose<T: Send + 'static>(tree: T, source_len: usize) {
    let stack = source_len
        .saturating_mul(DROP_STACK_PER_BYTE)
        .clamp(DROP_STACK_MIN, DROP_STACK_MAX);
    let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(tree)));
    let theirs = std::sync::Arc::clone(&slot);
    let spawned = std::thread::Builder::new()
        .name("aura-guard-drop".to_owned())
        .stack_size(stack)
        .spawn(move || {
            let taken = match theirs.lock() {
                Ok(mut guard) => guard.take(),
                Err(poisoned) => poisoned.into_inner().take(),
            };
            drop(taken);
        });
    let dropped = match spawned {
        Ok(handle) => handle.join().is_ok(),
        Err(_) => false,
    };
    if !dropped {
        // No thread could be started: leak the tree (bounded by the source size
        // limit) rather than risk overflowing this stack.
        let leftover = match slot.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        std::mem::forget(leftover);
    }
}
