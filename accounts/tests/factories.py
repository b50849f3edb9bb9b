import factory

from accounts.models import AgentProfile, User

PASSWORD = "correct-horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    role = User.Role.CUSTOMER
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class AgentFactory(UserFactory):
    role = User.Role.AGENT
    is_staff = True

    @factory.post_generation
    def profile(obj, create, extracted, **kwargs):
        if create:
            from accounts.services import agents_group

            AgentProfile.objects.get_or_create(user=obj)
            obj.groups.add(agents_group())


class StaffFactory(UserFactory):
    role = User.Role.STAFF
    is_staff = True
