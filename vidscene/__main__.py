from vidscene.cli import app

app()
