"""The compiler: source text to an immutable :class:`Plan`, its modules in pipeline order.

``syntax`` (text -> AST) -> ``_ast`` -> ``_lower`` (AST -> ``_document``) -> ``load`` (files,
YAML/JSON, imports, the workspace) -> ``_schema`` -> ``_check`` (names and types) -> ``_bind``
(templates, params, resolution) -> ``_model`` -> ``_graph`` -> ``_plan``; ``_pipeline`` runs
the steps and ``_format`` is the formatter of ``.alfred`` text.
"""
