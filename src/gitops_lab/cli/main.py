import click


@click.group()
def main():
    """gitops-lab"""
