" Vim syntax file for alfred workflow files (.alfred); no tree-sitter needed.
" The keyword list is the grammar's (alfred_dsl._syntax.KEYWORDS): tests/test_editors.py keeps them equal.
if exists("b:current_syntax")
  finish
endif

syn keyword alfredKeyword import agent workflow param defaults stage use as after on
syn keyword alfredOperator and or not
syn keyword alfredBoolean true false

syn match alfredComment "#.*$" contains=@Spell
syn match alfredNumber "-\=\<[0-9]\+\(\.[0-9]\+\)\=\([eE][-+]\=[0-9]\+\)\=\>"
syn match alfredDuration "\<\([0-9]\+\(ms\|s\|m\|h\|d\)\)\+\>"
syn match alfredAttribute "^\s*\zs[A-Za-z_][A-Za-z0-9_-]*\ze\s*=[^=]"
syn match alfredReference "\<\(params\|stages\|inputs\|env\|secrets\)\(\.[A-Za-z_][A-Za-z0-9_-]*\)\+"
syn match alfredName "\<\(agent\|workflow\|stage\|param\)\s\+\zs[A-Za-z_][A-Za-z0-9_-]*" contains=NONE

syn region alfredInterpolation matchgroup=alfredDelimiter start="\${" end="}" contained contains=alfredReference,alfredOperator,alfredBoolean,alfredNumber
syn match alfredEscape "\\[\"\\nt]" contained
syn match alfredEscape "\$\${" contained
syn region alfredString start=+"+ skip=+\\\\\|\\"+ end=+"\|$+ contains=alfredEscape,alfredInterpolation

hi def link alfredKeyword Keyword
hi def link alfredOperator Operator
hi def link alfredBoolean Boolean
hi def link alfredComment Comment
hi def link alfredNumber Number
hi def link alfredDuration Number
hi def link alfredAttribute Identifier
hi def link alfredReference PreProc
hi def link alfredName Function
hi def link alfredString String
hi def link alfredEscape SpecialChar
hi def link alfredDelimiter Delimiter

let b:current_syntax = "alfred"
