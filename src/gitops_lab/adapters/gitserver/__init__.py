"""Git servers.

For `up` (lab.py): the in-cluster server on kind (incluster.py) or an external
URL (external.py), chosen by ``lab.lab_git_server``. For classrooms (base.py):
one repository per learner, on the in-cluster server or a served folder (folder.py).
"""
