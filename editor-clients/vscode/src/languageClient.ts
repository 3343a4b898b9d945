/**
 * The language client for `metagpt-lsp`: which documents it serves, how settings reach the server, and where
 * progress goes.
 *
 * Settings go three ways, all through {@link serverSettings}: `initializationOptions`, the answer to
 * `workspace/configuration`, and `workspace/didChangeConfiguration` when the user changes them. Diagnostics are pulled
 * on open, change and save; the server asks for a re-pull (`workspace/diagnostic/refresh`) when a review finishes.
 * Inline completion is vscode-languageclient's own `textDocument/inlineCompletion` feature (LSP 3.18).
 */

import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";

import { ActivityStatus, ProgressValue } from "./activityStatus";
import { ServerCommand } from "./serverCommand";
import { currentSettings, SECTION, serverSettings } from "./settings";

export const LANGUAGES = [
  "python",
  "javascript",
  "javascriptreact",
  "typescript",
  "typescriptreact",
  "go",
  "rust",
  "java",
];

export function createClient(server: ServerCommand, output: vscode.LogOutputChannel,
  activity: ActivityStatus): LanguageClient {
  const serverOptions: ServerOptions = {
    command: server.command,
    args: server.args,
    transport: TransportKind.stdio, // appends --stdio
  };
  let client: LanguageClient | undefined;
  const clientOptions: LanguageClientOptions = {
    documentSelector: LANGUAGES.map((language) => ({ scheme: "file", language })),
    outputChannel: output,
    traceOutputChannel: output,
    initializationOptions: currentSettings(),
    synchronize: { configurationSection: SECTION },
    diagnosticPullOptions: { onChange: true, onSave: true },
    middleware: {
      handleWorkDoneProgress: (token, params, next) => {
        activity.progress(token, params as ProgressValue);
        next(token, params);
      },
      workspace: {
        configuration: async (params, token, next) => {
          const values = await next(params, token);
          if (!Array.isArray(values)) {
            return values;
          }
          return values.map((value, index) => params.items[index]?.section === SECTION ? serverSettings(value) : value);
        },
        didChangeConfiguration: async (_sections, _next) => {
          await client?.sendNotification(DidChangeConfigurationNotification.type,
            { settings: { [SECTION]: currentSettings() } });
        },
      },
    },
  };
  client = new LanguageClient("metagptLsp", "metagpt-lsp", serverOptions, clientOptions);
  return client;
}
