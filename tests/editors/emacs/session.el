;;; session.el --- drive eglot as a user would, against metagpt-lsp and the scripted LLM  -*- lexical-binding: t -*-

;; emacs -nw -Q -l session.el VERDICT_JSON DOCS_MD FILE SCENARIO
;;
;; FILE is stats.py in a git repository whose HEAD has the correct `mean'. Every scenario opens it (eglot starts
;; through `eglot-ensure' as configured in the docs), asks the server's status with `C-c m s', breaks `mean' by
;; typing " - 1" at the end of its return line, saves, and waits for the review's Flymake diagnostic. Then:
;;   fix      - first a syntax error typed and corrected (its Flymake diagnostic comes and goes), then `C-c m a',
;;              pick "Explain and fix: ..." from the menu, answer yes when eglot asks to let the server edit;
;;   slow     - `C-c m f' (quickfix) while the model takes longer than eglot's 10 s request timeout; answer yes;
;;   decline  - `C-c m f', answer no; then the status again (the server still answers);
;;   inflight - `C-c m f' while the model never answers; the status shows the fix in flight; then shutdown.
;; Every scenario ends with `eglot-shutdown' (harness.el) and the verdict.

(load (expand-file-name "harness" (file-name-directory load-file-name)) nil t)

(defconst metagpt-test-model "emacs-test-model"
  "Set through `eglot-workspace-configuration' on top of the documented one; the status must report it.")

(setq-default eglot-workspace-configuration
              (let ((section (copy-tree (plist-get eglot-workspace-configuration :metagptLsp))))
                (list :metagptLsp (plist-put section :llm (list :model metagpt-test-model)))))

(defun metagpt-test-user (function)
  "Run FUNCTION as one user command: then `post-command-hook' runs, as after every command (eglot-ensure
starts the server from it)."
  (funcall function)
  (run-hooks 'post-command-hook))

(defun metagpt-test-status-since (sequence)
  "The server's status summary (\"metagpt-lsp: MODEL at URL...\") shown after event SEQUENCE, or nil.
Other messages of the server shown meanwhile (a late \"did not apply the edit\") are not the summary."
  (cl-loop for event in (metagpt-test-events-of "showMessage")
           for message = (alist-get 'message (nth 2 event))
           when (and (> (car event) sequence)
                     (string-match-p "\\`metagpt-lsp: .* at [a-z]+://" message))
           return message))

(defmacro metagpt-test-status ()
  "Inside the drive: `C-c m s' and wait for the server's summary; its text."
  `(let ((asked metagpt-test-sequence))
     (metagpt-test-command "C-c m s")
     (metagpt-test-wait "status answered" 60 (metagpt-test-status-since asked))))

(defun metagpt-test-command-done ()
  "True once the last key command returned or failed."
  (let ((started (car (car (last (metagpt-test-events-of "command"))))))
    (cl-find-if (lambda (event) (and (> (car event) started)
                                     (member (nth 1 event) '("command-returned" "command-error"))))
                metagpt-test-events)))

(defun metagpt-test-text ()
  (buffer-substring-no-properties (point-min) (point-max)))

(metagpt-test-drive
 (metagpt-test-user (lambda () (find-file metagpt-test-file)))
 (setq metagpt-test-buffer (current-buffer))
 (metagpt-test-record 'major_mode (symbol-name major-mode))
 (metagpt-test-wait "eglot connected" 120 (and (eglot-current-server) eglot--managed-mode))
 (metagpt-test-record 'server_program (process-command (jsonrpc--process (eglot-current-server))))
 (metagpt-test-record 'status (metagpt-test-status))

 (when (equal metagpt-test-scenario "fix")
   ;; (a) a syntax error, typed: its diagnostic appears at once, and goes when the error is gone.
   (goto-char (point-max))
   (let ((start (point)))
     (metagpt-test-user (lambda () (insert "\n\ndef broken(:\n    return 1\n")))
     (metagpt-test-wait "syntax diagnostic" 60 (metagpt-test-flymake "metagpt-lsp"))
     (metagpt-test-record 'syntax (vconcat (metagpt-test-flymake "metagpt-lsp")))
     ;; Close the parenthesis (the diagnostic's own text stays, so only the server can clear it).
     (search-backward "(:")
     (forward-char 1)
     (metagpt-test-user (lambda () (insert ")")))
     (metagpt-test-wait "syntax diagnostic gone" 60 (null (metagpt-test-flymake "metagpt-lsp")))
     (metagpt-test-user (lambda () (delete-region start (point-max))))))

 ;; (b) break `mean' and save: the review's finding appears.
 (goto-char (point-min))
 (re-search-forward "return total / len(xs)$")
 (metagpt-test-user (lambda () (insert " - 1")))
 (metagpt-test-user #'save-buffer)
 (metagpt-test-wait "review diagnostic after save" 120 (metagpt-test-flymake "metagpt-review"))
 (metagpt-test-record 'review (vconcat (metagpt-test-flymake "metagpt-review")))
 (metagpt-test-record 'broken_text (metagpt-test-text))
 (goto-char (flymake-diagnostic-beg (cl-find-if (lambda (d) (string-prefix-p "metagpt-review"
                                                                               (flymake-diagnostic-text d)))
                                                (flymake-diagnostics))))

 (cond
  ((member metagpt-test-scenario '("fix" "slow"))
   ;; (c) and (d): the fix, picked from the menu or as the quickfix, applied after eglot's question.
   (metagpt-test-command (if (equal metagpt-test-scenario "fix") "C-c m a" "C-c m f"))
   (metagpt-test-wait "the fix applied" 180 (not (string-match-p "len(xs) - 1" (metagpt-test-text))))
   (metagpt-test-wait "the command done" 60 (metagpt-test-command-done))
   (metagpt-test-record 'fixed_text (metagpt-test-text))
   (metagpt-test-wait "review finding gone after the fix" 60 (null (metagpt-test-flymake "metagpt-review"))))
  ((equal metagpt-test-scenario "decline")
   ;; (e) the user says no to the server's edit.
   (setq metagpt-test-answer-edit nil)
   (metagpt-test-command "C-c m f")
   (metagpt-test-wait "eglot asked to let the server edit" 180 (metagpt-test-events-of "asked-to-edit"))
   (metagpt-test-wait "the command done" 60 (metagpt-test-command-done))
   (metagpt-test-record 'status_after (metagpt-test-status))
   (metagpt-test-record 'declined_text (metagpt-test-text)))
  ((equal metagpt-test-scenario "inflight")
   ;; (f) shutdown while the team waits on a model that never answers.
   (metagpt-test-command "C-c m f")
   (metagpt-test-wait "the command done" 60 (metagpt-test-command-done))
   (let ((status (metagpt-test-status)))
     (while (string-match-p ", 0 task(s) in flight" status)
       (setq status (metagpt-test-status)))
     (metagpt-test-record 'status_in_flight status)))))

;;; session.el ends here
