from gitops_lab.cli import main

main(prog_name="gitops-lab")
