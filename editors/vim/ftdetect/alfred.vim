" alfred workflow files
autocmd BufRead,BufNewFile *.alfred setfiletype alfred
