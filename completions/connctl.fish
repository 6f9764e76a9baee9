complete --keep-order --exclusive --command connctl --arguments "(COMPLETE=fish connctl -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
