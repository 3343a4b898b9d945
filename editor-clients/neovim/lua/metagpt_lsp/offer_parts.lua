--- What "the next word" and "the next line" of a ghost-text offer are, for accepting an offer a part at a time.
--- Pure functions on the text not yet in the buffer; both implementations (native and fallback) use them.
---
--- - word: the non-word characters up to the next word, then that word, on the current line (`"""The`, ` = 2`,
---   `.pi`); at the end of a line, the line break and the next line's indentation.
--- - line: the rest of the current line with its line break (as VS Code's "accept next line" does), so the cursor
---   lands at the start of the next line of the offer; the last line of the offer whole.

local M = {}

--- The next word of `rest` (never empty when `rest` is not).
--- @param rest string
--- @return string
function M.word(rest)
  if rest:sub(1, 1) == '\n' then
    return rest:match('^\n[ \t]*')
  end
  return rest:match('^[^%w_\128-\255\n]*[%w_\128-\255]*') -- bytes of non-ASCII characters count as letters
end

--- The next line of `rest`, its line break included (never empty when `rest` is not).
--- @param rest string
--- @return string
function M.line(rest)
  local newline = rest:find('\n', 1, true)
  return newline and rest:sub(1, newline) or rest
end

--- The part of `rest` that accepting `what` ('word', 'line' or 'all') takes.
--- @param rest string
--- @param what 'word'|'line'|'all'
--- @return string
function M.take(rest, what)
  if what == 'word' then
    return M.word(rest)
  elseif what == 'line' then
    return M.line(rest)
  end
  return rest
end

return M
