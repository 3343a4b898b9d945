/**
 * The `metagptLsp` settings as the server reads them: the nested camelCase tree of docs/protocol.md.
 *
 * VS Code's section also holds what only the extension uses (`server.*`, `trace.server`); those are left out, and an
 * empty string (the Settings UI's "not set" for `llm.baseUrl` and `llm.model`) becomes null, so the server falls back
 * to the environment and then to the embedded model, as documented.
 */

import * as vscode from "vscode";

export const SECTION = "metagptLsp";
const CLIENT_ONLY = new Set(["server", "trace"]);
const EMPTY_MEANS_UNSET = new Set(["llm.baseUrl", "llm.model"]);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function plain(value: unknown, keyPath: string): Json {
  if (value === undefined || value === null) {
    return null;
  }
  if (Array.isArray(value)) {
    return value.map((item) => plain(item, keyPath));
  }
  if (typeof value === "object") {
    const result: { [key: string]: Json } = {};
    for (const [key, item] of Object.entries(value as object)) {
      if (typeof item !== "function") {
        result[key] = plain(item, keyPath ? `${keyPath}.${key}` : key);
      }
    }
    return result;
  }
  if (typeof value === "string" && value.trim() === "" && EMPTY_MEANS_UNSET.has(keyPath)) {
    return null;
  }
  return value as Json;
}

/** The server's settings from a raw `metagptLsp` section (a WorkspaceConfiguration or plain object). */
export function serverSettings(section: unknown): Json {
  if (section === null || typeof section !== "object") {
    return section === undefined ? null : plain(section, "");
  }
  const result: { [key: string]: Json } = {};
  for (const [key, value] of Object.entries(section as object)) {
    if (!CLIENT_ONLY.has(key) && typeof value !== "function") {
      result[key] = plain(value, key);
    }
  }
  return result;
}

/** The settings for `resource` (or the workspace), read fresh from VS Code. */
export function currentSettings(resource?: vscode.Uri): Json {
  const config = vscode.workspace.getConfiguration(SECTION, resource);
  const section: { [key: string]: unknown } = {};
  for (const key of ["llm", "syntax", "review", "inline", "team", "logLevel"]) {
    section[key] = config.get(key);
  }
  // The server runs code on save only in a workspace the user trusts, and never in an untrusted one.
  section.workspaceTrusted = vscode.workspace.isTrusted;
  return serverSettings(section);
}
