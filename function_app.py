"""Azure Functions entry point: the blueprints of `shared/functions/` registered, and nothing else."""

import azure.functions as func

from shared.functions import BLUEPRINTS, start

start()  # a bad setting or rules file stops the start here, naming it
app = func.FunctionApp()
for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
