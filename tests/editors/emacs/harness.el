;;; harness.el --- shared by the drive scripts of tests/test_emacs.py  -*- lexical-binding: t -*-

;; A drive script runs in a real terminal Emacs (`emacs -nw -Q', under a pty that tests/test_emacs.py opens) so
;; that eglot works as it does for a user: idle timers send didChange, Flymake shows diagnostics, the minibuffer
;; questions are asked. It loads this file, which:
;;   - activates Debian's ELPA packages (eglot 1.9 from `elpa-eglot'; `-Q' skips site-lisp);
;;   - evaluates the first ```elisp block of docs/editors-emacs-helix.md, the configuration users are told to use;
;;   - records what the user would see: the server's messages, eglot's prompts, errors of commands;
;;   - runs the drive as a generator stepped by a timer, so that Emacs waits in its command loop, idle, between
;;     steps (timers and process output running); a wait is for a condition, never a blind sleep;
;;   - ends by shutting the servers down and writing the verdict as JSON (then exits 0, or 1 when a step failed).
;;
;; Usage: emacs -nw -Q -l DRIVE.el VERDICT_JSON DOCS_MD FILE SCENARIO
;; The questions a user answers are answered by the drive: `metagpt-test-answer-edit' for eglot's "Server wants
;; to edit ... Proceed?" and `metagpt-test-pick' for the code action picked from the menu.

(require 'cl-lib)
(require 'generator)
(require 'json)
(require 'package)

(defvar metagpt-test-args (copy-sequence command-line-args-left))
(setq command-line-args-left nil) ; the arguments are ours, not files to visit
(defvar metagpt-test-verdict-path (nth 0 metagpt-test-args))
(defvar metagpt-test-docs (nth 1 metagpt-test-args))
(defvar metagpt-test-file (nth 2 metagpt-test-args))
(defvar metagpt-test-scenario (nth 3 metagpt-test-args))
(defvar metagpt-test-bound-s (string-to-number (or (getenv "METAGPT_TEST_EMACS_BOUND_S") "240"))
  "The whole run's bound: past it the verdict says which step was still waiting.")

(defvar metagpt-test-verdict (list (cons 'steps nil)) "The verdict, an alist written as JSON at the end.")
(defvar metagpt-test-events nil "What happened, in order: (SEQUENCE KIND DETAIL).")
(defvar metagpt-test-sequence 0)
(defvar metagpt-test-current-step nil)
(defvar metagpt-test-answer-edit t "What the user answers when eglot asks whether the server may edit.")
(defvar metagpt-test-pick "^Explain and fix" "Regexp of the code action the user picks from the menu.")
(defvar metagpt-test-finished nil)

(defun metagpt-test-record (key value)
  (setf (alist-get key metagpt-test-verdict) value))

(defun metagpt-test-event (kind &optional detail)
  "Note that KIND happened (with DETAIL); returns its sequence number."
  (push (list (cl-incf metagpt-test-sequence) kind detail) metagpt-test-events)
  metagpt-test-sequence)

(defun metagpt-test-events-of (kind)
  (cl-remove-if-not (lambda (event) (equal (nth 1 event) kind)) (reverse metagpt-test-events)))

;;; Debian's eglot and the documented configuration --------------------------------------------------------------

(setq package-user-dir (expand-file-name "elpa" user-emacs-directory)
      package-directory-list '("/usr/share/emacs/site-lisp/elpa"))
(package-initialize)
(setq project-list-file (expand-file-name "projects" user-emacs-directory)
      make-backup-files nil
      auto-save-default nil
      create-lockfiles nil
      vc-follow-symlinks t
      inhibit-message nil)

(defun metagpt-test-documented-configuration (markdown)
  "The first ```elisp block of MARKDOWN (a file name), as text."
  (with-temp-buffer
    (insert-file-contents markdown)
    (goto-char (point-min))
    (unless (re-search-forward "^```elisp\n" nil t)
      (error "No ```elisp block in %s" markdown))
    (let ((start (point)))
      (re-search-forward "^```$")
      (buffer-substring-no-properties start (match-beginning 0)))))

(defun metagpt-test-eval-text (text)
  (with-temp-buffer
    (insert text)
    (goto-char (point-min))
    (condition-case nil
        (while t (eval (read (current-buffer)) t))
      (end-of-file nil))))

(metagpt-test-eval-text (metagpt-test-documented-configuration metagpt-test-docs))
(metagpt-test-record 'emacs_version emacs-version)
(metagpt-test-record 'eglot_version
                     (package-version-join (package-desc-version (cadr (assq 'eglot package-alist)))))
(metagpt-test-record 'eglot_library (locate-library "eglot"))
(setq eglot-connect-timeout 120) ; the server's start on a busy machine; not a bound on anything the test checks

;;; What the user sees -------------------------------------------------------------------------------------------

(cl-defmethod eglot-handle-notification :before
  (_server (_method (eql window/showMessage)) &key type message &allow-other-keys)
  (metagpt-test-event "showMessage" (list (cons 'type type) (cons 'message message))))

(cl-defmethod eglot-handle-notification :before
  (_server (_method (eql window/logMessage)) &key type message &allow-other-keys)
  (when (<= type 1)
    (metagpt-test-event "logMessage-error" (list (cons 'type type) (cons 'message message)))))

(cl-defmethod eglot-handle-request :before
  (_server (_method (eql workspace/applyEdit)) &key _label _edit &allow-other-keys)
  (metagpt-test-event "applyEdit"))

(define-advice y-or-n-p (:around (original prompt) metagpt-test)
  "The user's answer to eglot's question before a server edit; any other question is a failure."
  (if (string-match-p "Server wants to edit" prompt)
      (progn (metagpt-test-event "asked-to-edit" (if metagpt-test-answer-edit "yes" "no"))
             metagpt-test-answer-edit)
    (metagpt-test-event "unexpected-question" prompt)
    (funcall original prompt)))

(define-advice completing-read (:around (original prompt collection &rest rest) metagpt-test)
  "The user picks the code action matching `metagpt-test-pick' from eglot's menu."
  (if (string-match-p "\\[eglot\\] Pick an action" prompt)
      (let* ((titles (mapcar (lambda (item) (if (consp item) (car item) item)) collection))
             (chosen (cl-find-if (lambda (title) (string-match-p metagpt-test-pick title)) titles)))
        (metagpt-test-event "menu" (vconcat titles))
        (or chosen (error "No code action matching %S in %S" metagpt-test-pick titles)))
    (apply original prompt collection rest)))

(defun metagpt-test-server ()
  (car (cl-loop for servers being the hash-values of eglot--servers-by-project append servers)))

(defun metagpt-test-command (keys)
  "Run the command bound to KEYS in the current buffer as a user pressing them would; its error is recorded."
  (let ((command (key-binding (kbd keys)))
        (last-nonmenu-event ?\r)) ; invoked from the keyboard: eglot offers its menu in the minibuffer
    (unless command (error "Nothing is bound to %s" keys))
    (metagpt-test-event "command" (format "%s %s" keys command))
    (condition-case err
        (progn (call-interactively command) (metagpt-test-event "command-returned" (symbol-name command)))
      (error (metagpt-test-event "command-error" (error-message-string err))))))

(defun metagpt-test-flymake (&optional prefix)
  "The Flymake diagnostics of the current buffer whose text starts with PREFIX, as alists."
  (cl-loop for diagnostic in (flymake-diagnostics)
           for text = (flymake-diagnostic-text diagnostic)
           when (or (null prefix) (string-prefix-p prefix text))
           collect (list (cons 'text text)
                         (cons 'line (line-number-at-pos (flymake-diagnostic-beg diagnostic)))
                         (cons 'type (symbol-name (flymake-diagnostic-type diagnostic))))))

;;; Waiting ---------------------------------------------------------------------------------------------------------
;;
;; The drive is a generator (`metagpt-test-drive'), stepped by a timer. Between steps Emacs sits in its command loop
;; waiting for input, idle as when a user stops typing: idle timers (eglot's didChange, Flymake) fire, process
;; output is read, the screen is redrawn. (A `sit-for' loop would not do: Emacs is not idle inside it.)

(defvar metagpt-test-drive nil "The running drive (a generator).")
(defvar metagpt-test-buffer nil "The buffer the drive works in; current again after each wait.")

(defun metagpt-test-note-step (name ok seconds)
  (push (list (cons 'name name) (cons 'ok (if ok t :json-false)) (cons 'seconds seconds))
        (alist-get 'steps metagpt-test-verdict))
  (unless ok (metagpt-test-finish nil (format "timed out waiting for: %s" name))))

(defmacro metagpt-test-wait (name bound-s &rest condition)
  "Inside the drive: let Emacs run until CONDITION is true; fail after BOUND-S seconds. Returns CONDITION's value.
BOUND-S is generous: it only turns a hang into a failure that says what was awaited."
  (let ((start (make-symbol "start")) (ok (make-symbol "ok")))
    `(let ((,start (float-time)) (,ok nil))
       (setq metagpt-test-current-step ,name)
       (while (and (not (setq ,ok (progn ,@condition))) (< (- (float-time) ,start) ,bound-s))
         (iter-yield nil)
         (when (buffer-live-p metagpt-test-buffer) (set-buffer metagpt-test-buffer)))
       (metagpt-test-note-step ,name ,ok (- (float-time) ,start))
       ,ok)))

(defun metagpt-test-step ()
  (condition-case err
      (progn (iter-next metagpt-test-drive)
             (run-with-timer 0.05 nil #'metagpt-test-step))
    (iter-end-of-sequence (metagpt-test-finish t))
    (error (metagpt-test-finish nil (format "error: %S" err)))))

(defmacro metagpt-test-drive (&rest body)
  "Run BODY as the drive, once Emacs has started; its end is a passed verdict, an error a failed one."
  `(progn
     (setq metagpt-test-drive (funcall (iter-lambda () ,@body)))
     (run-with-timer 0 nil #'metagpt-test-step)))

;;; The end --------------------------------------------------------------------------------------------------------

(defun metagpt-test-stderr ()
  (let ((buffer (cl-find-if (lambda (b) (string-match-p "\\*EGLOT.*stderr\\*" (buffer-name b))) (buffer-list))))
    (if buffer (with-current-buffer buffer (buffer-substring-no-properties (point-min) (point-max))) "")))

(defun metagpt-test-shutdown ()
  "Shut every server down as `M-x eglot-shutdown' does (with a generous bound on its answer)."
  (let (shutdowns)
    (dolist (server (cl-loop for servers being the hash-values of eglot--servers-by-project append servers))
      (let* ((process (jsonrpc--process server))
             (pid (process-id process))
             (error-text nil))
        (condition-case err
            (eglot-shutdown server nil 60 t) ; keep its stderr buffer: the log goes into the verdict
          (error (setq error-text (error-message-string err))))
        (let ((start (float-time)))
          (while (and (process-live-p process) (< (- (float-time) start) 60))
            (accept-process-output nil 0.05)))
        (push (list (cons 'pid pid) (cons 'error error-text) (cons 'live (if (process-live-p process) t :json-false)))
              shutdowns)))
    (metagpt-test-record 'shutdowns (vconcat shutdowns))))

(defun metagpt-test-finish (ok &optional reason)
  "Shut the servers down, write the verdict and exit (0 when OK)."
  (unless metagpt-test-finished
    (setq metagpt-test-finished t)
    (metagpt-test-record 'ok (if ok t :json-false))
    (metagpt-test-record 'reason reason)
    (condition-case err (metagpt-test-shutdown)
      (error (metagpt-test-record 'shutdown_failure (error-message-string err))))
    (metagpt-test-record 'stderr (metagpt-test-stderr))
    (metagpt-test-record 'events (vconcat (mapcar (lambda (event) (vconcat event)) (reverse metagpt-test-events))))
    (setf (alist-get 'steps metagpt-test-verdict) (vconcat (reverse (alist-get 'steps metagpt-test-verdict))))
    (with-temp-file metagpt-test-verdict-path
      (insert (json-encode metagpt-test-verdict)))
    (kill-emacs (if ok 0 1))))

(run-with-timer metagpt-test-bound-s nil
                (lambda () (metagpt-test-finish nil (format "the run passed its %ss bound while waiting for: %s"
                                                            metagpt-test-bound-s metagpt-test-current-step))))

(provide 'harness)
;;; harness.el ends here
