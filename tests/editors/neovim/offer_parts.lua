--- Drive: what accepting the next word and the next line of an offer takes, for offers a user meets (the plugin's
--- offer_parts module, in a real Neovim).
---
--- nvim --headless --clean -l offer_parts.lua PLUGIN_DIR VERDICT_JSON OFFERS_JSON
--- OFFERS_JSON: a JSON list of offer texts; the verdict has { offers = { { text, word, line }... } }.

local h = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'harness.lua')).start(arg)

h:run(function()
  local parts = require('metagpt_lsp.offer_parts')
  local offers = {}
  for _, text in ipairs(vim.json.decode(h.args[1])) do
    table.insert(offers, { text = text, word = parts.word(text), line = parts.line(text) })
  end
  h:record('offers', offers)
end)
