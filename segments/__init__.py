"""Rule segments: marketers' YAML (`rules.yml`) and its evaluator (`rules`). `audiences.yml`
beside them says which segment goes where; `activation.audiences` reads it."""
