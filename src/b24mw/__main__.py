from b24mw.cli import app

app(prog_name="b24mw")
