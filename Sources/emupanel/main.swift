print("emupanel")
