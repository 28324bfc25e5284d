"""Helpers the tests share: Git (``gitutil``), injected Git faults (``faults``), a
static HTTP server (``httpserve``), a stand-in for the kind binary
(``kindstandin``), the model server as a process (``modelserver_process``), the
overlay renderer's availability (``renderer``) and the end-to-end run counts the
test beds print (``e2e_counts``)."""
