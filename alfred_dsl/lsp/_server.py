"""``alfredc lsp``: the Language Server Protocol over stdio, on pygls.

Each open file is checked as ``alfredc check`` would check it, with the editor's unsaved
texts read instead of the disk (so imports of open files see their buffers). A check runs
on open, on save and, debounced, after changes; every request first makes sure the
analysis of its file matches the current text. pygls answers a request whose handler
raises with a JSON-RPC error: the server keeps running.
"""

from __future__ import annotations

import asyncio
import os

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from .._version import __version__
from ._compiler import KEYWORDS, Diagnostic, Edit, Severity, SourceFile, Span, format_source
from ._features import NAME_RE, Analysis, complete, hover, keyword_spans, symbol_at
from ._incremental import IncrementalParser
from ._index import Occurrence, Symbol

__all__ = ["DEBOUNCE_S", "TOKEN_TYPES", "make_server", "serve"]

#: Quiet time after the last change before a file is re-checked.
DEBOUNCE_S = 0.15
TOKEN_TYPES = ["namespace", "class", "function", "parameter", "property", "keyword", "variable"]
_TOKEN_OF_KIND = {"workflow": 0, "agent": 1, "stage": 2, "param": 3, "attribute": 4, "keyword": 5, "alias": 6}
_COMPLETION_KINDS = {
    "keyword": types.CompletionItemKind.Keyword,
    "attribute": types.CompletionItemKind.Property,
    "agent": types.CompletionItemKind.Class,
    "stage": types.CompletionItemKind.Function,
    "param": types.CompletionItemKind.Variable,
    "workflow": types.CompletionItemKind.Module,
    "capability": types.CompletionItemKind.EnumMember,
    "value": types.CompletionItemKind.Value,
    "reference": types.CompletionItemKind.Variable,
}
_SEVERITIES = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.NOTE: types.DiagnosticSeverity.Information,
}


# -- positions: compiler offsets (code points) <-> LSP (UTF-16 code units) ---------------------


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def position(source: SourceFile, offset: int) -> types.Position:
    line, column = source.position(offset)
    return types.Position(line=line - 1, character=_utf16(source.line_text(line)[: column - 1]))


def to_range(span: Span) -> types.Range:
    return types.Range(start=position(span.source, span.start), end=position(span.source, span.end))


def to_offset(text: str, where: types.Position) -> int:
    starts = [0]
    for index, char in enumerate(text):
        if char == "\n":
            starts.append(index + 1)
    line = min(max(where.line, 0), len(starts) - 1)
    start = starts[line]
    end = starts[line + 1] - 1 if line + 1 < len(starts) else len(text)
    units = 0
    for index in range(start, end):
        if units >= where.character:
            return index
        units += 2 if ord(text[index]) > 0xFFFF else 1
    return end


def _uri(path: str) -> str:
    return from_fs_path(path) or path


def _path(uri: str) -> str:
    return os.path.abspath(to_fs_path(uri) or uri)


# -- the server -------------------------------------------------------------------------------


class AlfredServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("alfred", __version__)
        self.analyses: dict[str, Analysis] = {}
        self.last_good: dict[str, Analysis] = {}
        self.pending: dict[str, asyncio.TimerHandle] = {}
        # Stage blocks of the last parse of each file: a re-check parses only what changed.
        self.parser = IncrementalParser()

    def texts(self) -> dict[str, str]:
        return {_path(uri): doc.source for uri, doc in self.workspace.text_documents.items()}

    def analysis(self, uri: str) -> tuple[Analysis, str]:
        """The analysis of an open file, made now if the text changed since the last one."""
        path = _path(uri)
        text = self.workspace.get_text_document(uri).source
        current = self.analyses.get(uri)
        if current is None or current.text != text:
            current = Analysis.check(path, {**self.texts(), path: text}, self.parser.parse)
            self.analyses[uri] = current
            if current.loaded:
                self.last_good[uri] = current
        return current, path

    def publish(self, uri: str) -> None:
        self.pending.pop(uri, None)
        if uri not in self.workspace.text_documents:
            return
        analysis, path = self.analysis(uri)
        diagnostics = [_diagnostic(d) for d in analysis.checked.diagnostics if _concerns(d, path)]
        version = self.workspace.get_text_document(uri).version
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version)
        )

    def later(self, uri: str) -> None:
        waiting = self.pending.pop(uri, None)
        if waiting is not None:
            waiting.cancel()
        self.pending[uri] = asyncio.get_running_loop().call_later(DEBOUNCE_S, self.publish, uri)

    def everywhere(self, key: tuple[str, str, str]) -> list[Occurrence]:
        """Occurrences of a symbol in every open file's workspace (imports included), once each."""
        seen: dict[tuple[str, int], Occurrence] = {}
        for uri in list(self.workspace.text_documents):
            index = self.analysis(uri)[0].index
            if index is None:
                continue
            for occurrence in index.of(key):
                seen.setdefault((occurrence.span.file, occurrence.span.start), occurrence)
        return list(seen.values())


def _concerns(diagnostic: Diagnostic, path: str) -> bool:
    return os.path.abspath(diagnostic.filename) == path


def _diagnostic(diagnostic: Diagnostic) -> types.Diagnostic:
    primary = diagnostic.primary
    where = to_range(primary.span) if primary is not None else types.Range(
        start=types.Position(line=0, character=0), end=types.Position(line=0, character=0)
    )
    message = diagnostic.message
    if primary is not None and primary.text:
        message += f" ({primary.text})"
    if diagnostic.help:
        message += f"\nhelp: {diagnostic.help}"
    related = [
        types.DiagnosticRelatedInformation(
            location=types.Location(uri=_uri(label.span.file), range=to_range(label.span)),
            message=label.text or "related",
        )
        for label in diagnostic.secondary
    ]
    return types.Diagnostic(
        range=where,
        message=message,
        severity=_SEVERITIES.get(diagnostic.severity, types.DiagnosticSeverity.Error),
        code=diagnostic.code,
        source="alfred",
        related_information=related or None,
    )


def _edits(fix: tuple[Edit, ...]) -> dict[str, list[types.TextEdit]]:
    changes: dict[str, list[types.TextEdit]] = {}
    for edit in fix:
        changes.setdefault(_uri(os.path.abspath(edit.span.file)), []).append(
            types.TextEdit(range=to_range(edit.span), new_text=edit.replacement)
        )
    return changes


def _fix_title(diagnostic: Diagnostic) -> str:
    edit = diagnostic.fix[0]
    if edit.span.start == edit.span.end:
        return f"insert `{edit.replacement.strip()}`"
    return f"replace with `{edit.replacement}`"


def make_server() -> AlfredServer:
    server = AlfredServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: AlfredServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: AlfredServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.later(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: AlfredServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: AlfredServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.analyses.pop(uri, None)
        ls.last_good.pop(uri, None)
        waiting = ls.pending.pop(uri, None)
        if waiting is not None:
            waiting.cancel()
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
    )
    def code_action(ls: AlfredServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        analysis, path = ls.analysis(params.text_document.uri)
        wanted = params.range
        actions = []
        for diagnostic in analysis.checked.diagnostics:
            if not diagnostic.fix or diagnostic.primary is None or not _concerns(diagnostic, path):
                continue
            where = to_range(diagnostic.primary.span)
            if (where.end.line, where.end.character) < (wanted.start.line, wanted.start.character):
                continue
            if (where.start.line, where.start.character) > (wanted.end.line, wanted.end.character):
                continue
            actions.append(
                types.CodeAction(
                    title=_fix_title(diagnostic),
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=[_diagnostic(diagnostic)],
                    edit=types.WorkspaceEdit(changes=_edits(diagnostic.fix)),
                    is_preferred=True,
                )
            )
        return actions

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: AlfredServer, params: types.HoverParams) -> types.Hover | None:
        analysis, path = ls.analysis(params.text_document.uri)
        found = hover(analysis, path, to_offset(analysis.text, params.position))
        if found is None:
            return None
        text, span = found
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text), range=to_range(span)
        )

    def declaration(ls: AlfredServer, uri: str, where: types.Position) -> Symbol | None:
        analysis, path = ls.analysis(uri)
        key = symbol_at(analysis, path, to_offset(analysis.text, where))
        if key is None or analysis.index is None:
            return None
        return analysis.index.symbols.get(key)

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: AlfredServer, params: types.DefinitionParams) -> types.Location | None:
        analysis, path = ls.analysis(params.text_document.uri)
        offset = to_offset(analysis.text, params.position)
        if analysis.index is not None:
            for imported in analysis.index.imports:
                span = imported.span
                if span.file == path and span.start <= offset <= span.end:
                    top = types.Position(line=0, character=0)
                    return types.Location(uri=_uri(imported.target), range=types.Range(start=top, end=top))
        symbol = declaration(ls, params.text_document.uri, params.position)
        if symbol is None:
            return None
        name = symbol.name_span
        return types.Location(uri=_uri(os.path.abspath(name.file)), range=to_range(name))

    @server.feature(types.TEXT_DOCUMENT_REFERENCES)
    def references(ls: AlfredServer, params: types.ReferenceParams) -> list[types.Location]:
        analysis, path = ls.analysis(params.text_document.uri)
        offset = to_offset(analysis.text, params.position)
        if analysis.index is not None:
            for imported in analysis.index.imports:
                if imported.span.file == path and imported.span.start <= offset <= imported.span.end:
                    return [
                        types.Location(uri=_uri(os.path.abspath(i.span.file)), range=to_range(i.span))
                        for uri in list(ls.workspace.text_documents)
                        for i in (ls.analysis(uri)[0].index or analysis.index).imports
                        if i.target == imported.target
                    ]
        key = symbol_at(analysis, path, offset)
        if key is None:
            return []
        include = params.context.include_declaration
        return [
            types.Location(uri=_uri(os.path.abspath(o.span.file)), range=to_range(o.span))
            for o in sorted(ls.everywhere(key), key=lambda o: (o.span.file, o.span.start))
            if include or not o.declaration
        ]

    @server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
    def prepare_rename(ls: AlfredServer, params: types.PrepareRenameParams) -> types.Range | None:
        analysis, path = ls.analysis(params.text_document.uri)
        if analysis.index is None:
            return None
        found = analysis.index.at(path, to_offset(analysis.text, params.position))
        return to_range(found.span) if isinstance(found, Occurrence) else None

    @server.feature(types.TEXT_DOCUMENT_RENAME)
    def rename(ls: AlfredServer, params: types.RenameParams) -> types.WorkspaceEdit | None:
        new = params.new_name
        if not NAME_RE.fullmatch(new) or new in KEYWORDS:
            raise ValueError(f"`{new}` is not a valid name: a name starts with a letter or `_` "
                             "and holds letters, digits, `_` and `-`, and is not a keyword")
        analysis, path = ls.analysis(params.text_document.uri)
        key = symbol_at(analysis, path, to_offset(analysis.text, params.position))
        if key is None:
            return None
        changes: dict[str, list[types.TextEdit]] = {}
        for occurrence in ls.everywhere(key):
            changes.setdefault(_uri(os.path.abspath(occurrence.span.file)), []).append(
                types.TextEdit(range=to_range(occurrence.span), new_text=new)
            )
        return types.WorkspaceEdit(changes=changes)

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "=", " "])
    )
    def completion(ls: AlfredServer, params: types.CompletionParams) -> types.CompletionList:
        uri = params.text_document.uri
        text = ls.workspace.get_text_document(uri).source
        analysis = ls.analysis(uri)[0]
        if analysis.index is None:  # while the text does not parse, use the names of the last good check
            analysis = ls.last_good.get(uri, analysis)
        items = [
            types.CompletionItem(label=c.label, kind=_COMPLETION_KINDS.get(c.kind), detail=c.detail or None)
            for c in complete(analysis, text, to_offset(text, params.position))
        ]
        return types.CompletionList(is_incomplete=False, items=items)

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: AlfredServer, params: types.DocumentFormattingParams) -> list[types.TextEdit] | None:
        uri = params.text_document.uri
        path = _path(uri)
        if not path.endswith(".alfred"):
            return None
        text = ls.workspace.get_text_document(uri).source
        formatted, _ = format_source(text, path)
        if formatted is None or formatted == text:
            return [] if formatted is not None else None
        source = SourceFile(path, text)
        return [types.TextEdit(range=to_range(source.span(0, len(text))), new_text=formatted)]

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def document_symbol(ls: AlfredServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
        analysis, path = ls.analysis(params.text_document.uri)
        if analysis.index is None:
            analysis = ls.last_good.get(params.text_document.uri, analysis)
        index = analysis.index
        if index is None:
            return []
        kinds = {
            "agent": types.SymbolKind.Class, "workflow": types.SymbolKind.Module,
            "stage": types.SymbolKind.Function, "param": types.SymbolKind.Variable,
            "alias": types.SymbolKind.Namespace,
        }

        def symbol(item: Symbol, children: list[types.DocumentSymbol] | None = None) -> types.DocumentSymbol:
            return types.DocumentSymbol(
                name=item.name, kind=kinds[item.kind], range=to_range(item.span),
                selection_range=to_range(item.name_span), detail=item.kind, children=children,
            )

        mine = [s for s in index.symbols.values() if os.path.abspath(s.name_span.file) == path]
        result = []
        for item in mine:
            if item.kind == "agent":
                result.append(symbol(item))
            elif item.kind == "workflow":
                inner = [symbol(s) for s in mine if s.key[1] == item.name and s.kind != "workflow"]
                result.append(symbol(item, inner))
        return sorted(result, key=lambda s: (s.range.start.line, s.range.start.character))

    @server.feature(
        types.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL,
        types.SemanticTokensLegend(token_types=TOKEN_TYPES, token_modifiers=[]),
    )
    def semantic_tokens(ls: AlfredServer, params: types.SemanticTokensParams) -> types.SemanticTokens:
        analysis, path = ls.analysis(params.text_document.uri)
        found: dict[int, tuple[int, int]] = {}
        if path.endswith(".alfred"):
            for start, end in keyword_spans(analysis.text):
                found[start] = (end, _TOKEN_OF_KIND["keyword"])
        index = analysis.index
        if index is not None:
            for attribute in index.attributes:
                if attribute.span.file == path:
                    found[attribute.span.start] = (attribute.span.end, _TOKEN_OF_KIND["attribute"])
            for occurrence in index.in_file(path):
                found[occurrence.span.start] = (occurrence.span.end, _TOKEN_OF_KIND[occurrence.key[0]])
        source = SourceFile(path, analysis.text)
        data: list[int] = []
        previous = types.Position(line=0, character=0)
        last_end = -1
        for start in sorted(found):
            end, kind = found[start]
            if start < last_end:
                continue
            begin, finish = position(source, start), position(source, end)
            if begin.line != finish.line:
                continue
            same_line = begin.line == previous.line
            delta_char = begin.character - previous.character if same_line else begin.character
            data += [begin.line - previous.line, delta_char, finish.character - begin.character, kind, 0]
            previous, last_end = begin, end
        return types.SemanticTokens(data=data)

    return server


def serve() -> None:
    """Speak LSP on stdin/stdout until the client says exit."""
    make_server().start_io()

